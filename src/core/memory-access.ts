// The one rule for the edges of a guest-memory access, shared by the server and every backend.

/**
 * The bytes an access of `length` bytes is checked over.
 *
 * A zero-length access (ReadMemory, ReadMemoryStream, a ReadMemoryMany range, WriteMemory with no
 * data; unary or on a Session stream) is checked exactly as a one-byte access at the same address
 * would be — VP index, canonical GVA, page walk, mapped GPA — and then moves no bytes: it fails
 * with the error a one-byte access gets and otherwise answers no bytes. So whether an address can
 * be accessed never depends on the length, and a zero-length read is a probe that transfers
 * nothing. Each check of a range (the GVA walk in `translateRange`, each backend's GPA check)
 * goes through this function.
 */
export function checkedLength(length: number): number {
  return length === 0 ? 1 : length;
}
