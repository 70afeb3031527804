import { v7 } from 'uuid';

/**
 * A new row id: UUID version 7, time-ordered like the database's own default
 * (dispatch_uuid_v7(), migration 0006), so ids made here and there share index pages.
 */
export const newId = (): string => v7();
