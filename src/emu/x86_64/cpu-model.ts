// What the interpreter's processor implements: the control-register and EFER bits it honours.
// MOV to CR0/CR4, WRMSR EFER and a debugger's SetVpState all accept exactly these.

/** CR0 bits the interpreter implements: PE MP EM TS ET NE WP AM NW CD PG. */
export const CR0_SUPPORTED = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x10000 | 0x40000 | 0x20000000 | 0x40000000 | (0x80000000 | 0);
/** CR4 bits the interpreter implements: TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT UMIP LA57 OSXSAVE SMEP SMAP PKE. */
export const CR4_SUPPORTED = 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x1000 | 0x40000 | 0x100000 | 0x200000 | 0x400000;
/** EFER bits the interpreter implements: SCE LME LMA NXE. */
export const EFER_SUPPORTED = 0x1 | 0x100 | 0x400 | 0x800;
