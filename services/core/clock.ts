/** The source of "now" for every expiry, window and lifetime. */
export interface Clock {
  now(): Date;
}

/** The wall clock. */
export function createSystemClock(): Clock {
  return { now: () => new Date() };
}
