// How the bridge refuses a request: `E xx` with an errno gdb shows.

/** errno values gdb shows for `E xx` replies. */
export const EIO = 0x05;
export const EFAULT = 0x0e;
export const EINVAL = 0x16;
export const ENOSPC = 0x1c;

/** Thrown by handlers for a request refused with `E xx`. */
export class Refused extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
