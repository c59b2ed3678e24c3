// A corpus of random single instructions (register and memory forms) with the results an x86-64
// host produced for them: registers that changed, RFLAGS, and changed bytes of a 256-byte window.
// Inputs come from the same seeded generator the corpus was recorded with. Flags the SDM leaves
// undefined for an instruction are not compared.
import { REG, type RegName, TestMachine } from "./harness.js";

const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
const STATUS = CF | PF | AF | ZF | SF | OF;
const WINDOW = 0x180000;
const NAMES = Object.keys(REG) as RegName[];

/** [asm, code, registers that changed, RFLAGS after, window bytes that changed (offset: value)]. */
type Case = [string, string, Partial<Record<RegName, string>>, number, Record<number, number>];

const CORPUS: Case[] = [
  ["movzx r9d, word ptr [rbx+126]", "44 0f b7 4b 7e", { r9: "0x9a75" }, 0xa03, {}],
  ["not word ptr [rbx+30]", "66 f7 53 1e", {}, 0x256, { 31: 0x79, 32: 0x54 }],
  ["shr dil, cl", "40 d2 ef", { rdi: "0xffffffffffffff00" }, 0x256, {}],
  ["xchg word ptr [rbx+70], si", "66 87 73 46", { rsi: "0xd5b0" }, 0xa06, { 129: 0x00, 130: 0x00 }],
  ["shrd r11d, esi, 25", "41 0f ac f3 19", {}, 0x256, {}],
  ["mov r10w, word ptr [rbx+143]", "66 44 8b 93 8f 00 00 00", { r10: "0x1f58845f" }, 0xac2, {}],
  ["not rbp", "48 f7 d5", { rbp: "0xffffffff80000000" }, 0x213, {}],
  ["mov word ptr [rbx+123], cx", "66 89 4b 7b", {}, 0x292, { 170: 0x01, 171: 0x00 }],
  ["imul qword ptr [rbx+120]", "48 f7 6b 78", { rdx: "0xee8113a638cb5df0" }, 0xac3, {}],
  ["ror r8w, 26", "66 41 c1 c8 1a", {}, 0x246, {}],
  ["movsx ecx, sil", "40 0f be ce", { rcx: "0x0" }, 0x297, {}],
  ["movzx r12w, byte ptr [rbx+142]", "66 44 0f b6 a3 8e 00 00 00", { r12: "0xce6c00a0" }, 0x2d6, {}],
  ["mov word ptr [rbx+109], bx", "66 89 5b 6d", {}, 0x247, { 109: 0x00, 110: 0x00 }],
  ["shrd r13, r9, 0", "4d 0f ac cd 00", {}, 0xa82, {}],
  ["xadd word ptr [rbx+75], cx", "66 0f c1 4b 4b", { rcx: "0x6944" }, 0x206, {}],
  ["inc byte ptr [rbx+131]", "fe 83 83 00 00 00", {}, 0x206, { 154: 0x4e }],
  ["movzx esi, cx", "0f b7 f1", { rsi: "0xffff" }, 0x293, {}],
  ["mov byte ptr [rbx+69], r8b", "44 88 43 45", {}, 0xa06, { 86: 0x00 }],
  ["mul word ptr [rbx+35]", "66 f7 63 23", { rdx: "0xccf8022cf8c80000" }, 0x246, {}],
  ["movsxd rsi, r14d", "49 63 f6", {}, 0xa96, {}],
  ["mul bpl", "40 f6 e5", { rax: "0x7d887e7f335d9768" }, 0xa17, {}],
  ["bswap r14", "49 0f ce", {}, 0x252, {}],
  ["bswap r10d", "41 0f ca", { r10: "0x0" }, 0xac3, {}],
  ["imul rcx, r14, 65535", "49 69 ce ff ff 00 00", { rcx: "0x7fff7fff0001" }, 0x202, {}],
  ["mov byte ptr [rbx+99], 255", "c6 43 63 ff", {}, 0xa53, { 127: 0xff }],
  ["imul ax, si", "66 0f af c6", {}, 0x2d6, {}],
  ["shr rsi, 55", "48 c1 ee 37", { rsi: "0x100" }, 0x216, {}],
  ["xchg dword ptr [rbx+73], r9d", "44 87 4b 49", { r9: "0x66411cf7" }, 0xa86, { 124: 0x00, 125: 0x00, 126: 0x00, 127: 0x80 }],
  ["sets byte ptr [rbx+76]", "0f 98 43 4c", {}, 0xad7, { 92: 0x01 }],
  ["cmp rdi, qword ptr [rbx+35]", "48 3b 7b 23", {}, 0x217, {}],
  ["dec r11d", "41 ff cb", { r11: "0xfffffffe" }, 0x283, {}],
  ["ror al, 20", "c0 c8 14", { rax: "0xe659066e" }, 0xac2, {}],
  ["bts r11, 33", "49 0f ba eb 21", { r11: "0x27fffffff" }, 0xa42, {}],
  ["add r14, qword ptr [rbx+38]", "4c 03 73 26", { r14: "0x512c07e2e472546e" }, 0x202, {}],
  ["lea rdi, [rbp+rbx*8-2058]", "48 8d bc dd f6 f7 ff ff", { rdi: "0xbff9e6" }, 0x2d7, {}],
  ["bsf r10d, r8d", "45 0f bc d0", { r10: "0x0" }, 0x206, {}],
  ["and rbp, r8", "4c 21 c5", { rbp: "0x27aa669c7ddfee10" }, 0x202, {}],
  ["imul rsi, r8, 2", "49 6b f0 02", { rsi: "0xfffffffe" }, 0x202, {}],
  ["xchg dword ptr [rbx+5], ebp", "87 6b 05", { rbp: "0x6d4823fe" }, 0xa53, { 55: 0xff, 56: 0xff, 57: 0xff, 58: 0x7f }],
  ["sub rbp, qword ptr [rbx+134]", "48 2b ab 86 00 00 00", { rbp: "0x688db2d87c21466c" }, 0x217, {}],
  ["adc dx, word ptr [rbx+69]", "66 13 53 45", { rdx: "0x80008561" }, 0x282, {}],
  ["btc dword ptr [rbx+122], 6", "0f ba 7b 7a 06", {}, 0xa47, { 131: 0xba }],
  ["mul r14b", "41 f6 e6", {}, 0x296, {}],
  ["movzx r9d, byte ptr [rbx+26]", "44 0f b6 4b 1a", { r9: "0x3c" }, 0xa16, {}],
  ["mov dx, 0", "66 ba 00 00", { rdx: "0x0" }, 0x247, {}],
  ["imul r12d", "41 f7 ec", { rax: "0x0", rdx: "0x0" }, 0x2c2, {}],
  ["movsxd r14, esi", "4c 63 f6", { r14: "0x6d126440" }, 0xa03, {}],
  ["xchg byte ptr [rbx+115], bl", "86 5b 73", { rbx: "0x18009d" }, 0xa52, { 170: 0x37 }],
  ["mov r9, qword ptr [rbx+7]", "4c 8b 4b 07", { r9: "0xf5d0ab86613c17f2" }, 0xad3, {}],
  ["sets r10b", "41 0f 98 c2", { r10: "0xffffffffffffff00" }, 0x206, {}],
  ["ror r15w, 1", "66 41 d1 cf", {}, 0x287, {}],
  ["cmovge r8, rcx", "4c 0f 4d c1", { r8: "0x80000000" }, 0xad6, {}],
  ["mul byte ptr [rbx+124]", "f6 63 7c", { rax: "0x7fe72295d7e306c8" }, 0xa17, {}],
  ["cmovno esi, dword ptr [rbx+152]", "0f 41 b3 98 00 00 00", { rsi: "0xcba6815c" }, 0x292, {}],
  ["xchg dword ptr [rbx+153], r8d", "44 87 83 99 00 00 00", { r8: "0xe1bc9772" }, 0x2c3, { 155: 0x01, 156: 0x00, 157: 0x00, 158: 0x00 }],
  ["adc r11, qword ptr [rbx+66]", "4c 13 5b 42", { r11: "0x93eec9a47f5a3510" }, 0x282, {}],
  ["btc r13d, r11d", "45 0f bb dd", { r13: "0x17dac41d" }, 0xa93, {}],
  ["sahf", "9e", {}, 0xa02, {}],
  ["mul qword ptr [rbx+13]", "48 f7 63 0d", { rax: "0x14826fdd00000000", rdx: "0x5ecc39a7" }, 0xa47, {}],
  ["add r12b, byte ptr [rbx+55]", "44 02 63 37", { r12: "0xb5e035ab" }, 0x293, {}],
  ["bsf ebx, eax", "0f bc d8", { rbx: "0x5" }, 0x206, {}],
  ["lea r12d, [r15+r9*1-1970]", "47 8d a4 0f 4e f8 ff ff", { r12: "0xd5a2a6fe" }, 0xa52, {}],
  ["setae byte ptr [rbx+37]", "0f 93 43 25", {}, 0xa93, { 79: 0x00 }],
  ["lea ax, [rbp+r11*4+2134]", "66 42 8d 84 9d 56 08 00 00", { rax: "0xe8b70856" }, 0x202, {}],
  ["mov r13w, word ptr [rbx+5]", "66 44 8b 6b 05", { r13: "0xb3e81df8" }, 0x243, {}],
  ["rcl qword ptr [rbx+53], 1", "48 d1 53 35", {}, 0x297, { 54: 0xb2, 55: 0xfd, 56: 0x47, 57: 0x90, 58: 0xda, 59: 0x24, 60: 0x6f, 61: 0xb9 }],
  ["sub dl, 1", "80 ea 01", { rdx: "0xe84cafecb9ce65af" }, 0x296, {}],
  ["movsxd r15, r15d", "4d 63 ff", { r15: "0x0" }, 0xa46, {}],
  ["cmpxchg byte ptr [rbx+87], bpl", "40 0f b0 6b 57", { rax: "0x11674a12a26d616" }, 0x283, {}],
  ["shrd edi, esi, 31", "0f ac f7 1f", { rdi: "0xffffffff" }, 0x296, {}],
  ["cmovo r10d, dword ptr [rbx+25]", "44 0f 40 53 19", { r10: "0xb18c6742" }, 0xa53, {}],
  ["and bl, bh", "20 fb", { rbx: "0x180000" }, 0x246, {}],
  ["shld r15d, r12d, 6", "45 0f a4 e7 06", {}, 0x256, {}],
  ["test r12, rax", "49 85 c4", {}, 0x246, {}],
  ["imul dword ptr [rbx+133]", "f7 ab 85 00 00 00", { rax: "0x0", rdx: "0x3749dc6f" }, 0xad7, {}],
  ["and word ptr [rbx+158], 65535", "66 83 a3 9e 00 00 00 ff", {}, 0x206, {}],
  ["imul r14, rax", "4c 0f af f0", { r14: "0x69a4377800000000" }, 0xa87, {}],
  ["imul bp, r12w, 12029", "66 41 69 ec fd 2e", {}, 0x2c2, {}],
  ["imul r13b", "41 f6 ed", { rax: "0xffff" }, 0x242, {}],
  ["setae r12b", "41 0f 93 c4", { r12: "0xffffffffffffff01" }, 0x292, {}],
  ["shld esi, r10d, cl", "44 0f a5 d6", { rsi: "0xc0000000" }, 0xa96, {}],
  ["dec r12b", "41 fe cc", { r12: "0x7ffffffe" }, 0x282, {}],
  ["cmovbe esi, esi", "0f 46 f6", { rsi: "0x0" }, 0x287, {}],
  ["mov byte ptr [rbx+11], dil", "40 88 7b 0b", {}, 0x2d6, { 22: 0x00 }],
  ["btr word ptr [rbx+78], 1", "66 0f ba 73 4e 01", {}, 0xa56, {}],
  ["seta byte ptr [rbx+55]", "0f 97 43 37", {}, 0xa92, { 60: 0x01 }],
  ["btc dword ptr [rbx+137], 4", "0f ba bb 89 00 00 00 04", {}, 0xa02, { 171: 0xd2 }],
  ["movsx r11, word ptr [rbx+90]", "4c 0f bf 5b 5a", { r11: "0x4d28" }, 0x242, {}],
  ["adc byte ptr [rbx+149], 2", "80 93 95 00 00 00 02", {}, 0x286, { 177: 0xa3 }],
  ["bt dword ptr [rbx+122], 0", "0f ba 63 7a 00", {}, 0xa16, {}],
  ["ror ax, 1", "66 d1 c8", {}, 0x246, {}],
  ["bts eax, ebp", "0f ab e8", { rax: "0xffffffff" }, 0xac7, {}],
  ["mov qword ptr [rbx+72], 32768", "48 c7 43 48 00 80 00 00", {}, 0x217, { 88: 0x00, 89: 0x80, 90: 0x00, 91: 0x00, 92: 0x00, 93: 0x00, 94: 0x00, 95: 0x00 }],
  ["setno r10b", "41 0f 91 c2", { r10: "0xda820e01" }, 0x252, {}],
  ["rol rax, 61", "48 c1 c0 3d", { rax: "0x2000000000000000" }, 0x2d2, {}],
  ["dec byte ptr [rbx+83]", "fe 4b 53", {}, 0x286, { 122: 0xac }],
  ["mov r13w, 65535", "66 41 bd ff ff", { r13: "0x241effff" }, 0x283, {}],
  ["shl word ptr [rbx+21], 12", "66 c1 63 15 0c", {}, 0x297, { 54: 0x00, 55: 0x90 }],
  ["imul cx, r15w", "66 41 0f af cf", { rcx: "0x7fff0001" }, 0x216, {}],
  ["add dword ptr [rbx+47], 2", "83 43 2f 02", {}, 0x202, { 74: 0xbf }],
  ["cmovo ecx, dword ptr [rbx+57]", "0f 40 4b 39", { rcx: "0xcfaa8560" }, 0xac7, {}],
  ["btc dword ptr [rbx+43], 25", "0f ba 7b 2b 19", {}, 0x243, { 67: 0xb8 }],
  ["mov bp, word ptr [rbx+43]", "66 8b 6b 2b", { rbp: "0x7fffa17c" }, 0x293, {}],
  ["not dword ptr [rbx+56]", "f7 53 38", {}, 0x2d2, { 71: 0xb1, 72: 0x8c, 73: 0x67, 74: 0x42 }],
  ["xchg r10d, r11d", "45 87 da", { r10: "0x7fffffff", r11: "0x80000000" }, 0xa43, {}],
  ["btc dword ptr [rbx+16], 29", "0f ba 7b 10 1d", {}, 0xa86, { 28: 0x37 }],
  ["xchg qword ptr [rbx+49], r12", "4c 87 63 31", { r12: "0xa17c57320de8c39e" }, 0x2d7, { 87: 0x01, 88: 0x00, 89: 0x00, 90: 0x00, 91: 0x00, 92: 0x00, 93: 0x00, 94: 0x00 }],
  ["inc word ptr [rbx+3]", "66 ff 43 03", {}, 0x202, { 6: 0xea }],
  ["neg qword ptr [rbx+121]", "48 f7 5b 79", {}, 0x297, { 153: 0xd8, 154: 0xb2, 155: 0x8d, 156: 0x68, 157: 0x43, 158: 0x1e, 159: 0xf9, 160: 0xd4 }],
  ["ror byte ptr [rbx+19], 1", "d0 4b 13", {}, 0x203, { 80: 0xcd }],
  ["not dword ptr [rbx+130]", "f7 93 82 00 00 00", {}, 0xa43, { 156: 0x68, 157: 0x43, 158: 0x1e, 159: 0xf9 }],
  ["ror word ptr [rbx+84], 1", "66 d1 4b 54", {}, 0x292, { 139: 0x91, 140: 0x23 }],
  ["bt r10w, r11w", "66 45 0f a3 da", {}, 0x212, {}],
  ["rcl dword ptr [rbx+85], cl", "d3 53 55", {}, 0xa46, {}],
  ["xadd dword ptr [rbx+150], r14d", "44 0f c1 b3 96 00 00 00", { r14: "0x2e09e4bf" }, 0x202, {}],
  ["movzx r10, byte ptr [rbx+84]", "4c 0f b6 53 54", { r10: "0x66" }, 0x216, {}],
  ["imul r9d, r8d", "45 0f af c8", { r9: "0x76182e80" }, 0xa57, {}],
  ["cbw", "66 98", {}, 0x2d2, {}],
  ["cmovnp r9d, dword ptr [rbx+38]", "44 0f 4b 4b 26", { r9: "0x421df8d3" }, 0xa03, {}],
  ["sub ebp, dword ptr [rbx+84]", "2b 6b 54", { rbp: "0x660b3056" }, 0xa16, {}],
  ["inc word ptr [rbx+28]", "66 ff 43 1c", {}, 0x283, { 88: 0xc4 }],
  ["and ecx, 65535", "81 e1 ff ff 00 00", { rcx: "0x0" }, 0x246, {}],
  ["mul qword ptr [rbx+128]", "48 f7 a3 80 00 00 00", { rax: "0xe451bf2c80000000", rdx: "0x2e1b8976" }, 0xa87, {}],
  ["rol qword ptr [rbx+136], 21", "48 c1 83 88 00 00 00 15", {}, 0xac7, { 155: 0x05, 156: 0xaa, 157: 0x4e, 158: 0xee, 159: 0x92, 160: 0x37, 161: 0xdc, 162: 0x60 }],
  ["add dword ptr [rbx+26], 19", "83 43 1a 13", {}, 0x212, { 74: 0xd0 }],
  ["and bp, word ptr [rbx+157]", "66 23 ab 9d 00 00 00", {}, 0x246, {}],
  ["mov edi, dword ptr [rbx+94]", "8b 7b 5e", { rdi: "0x22fdd8b3" }, 0x2d3, {}],
  ["xor word ptr [rbx+66], 51636", "66 81 73 42 b4 c9", {}, 0x202, { 73: 0x2c, 74: 0x74 }],
  ["inc r11", "49 ff c3", { r11: "0x80000000" }, 0x217, {}],
  ["movsx r12d, r8w", "45 0f bf e0", { r12: "0x0" }, 0xad6, {}],
  ["cmovae rdx, qword ptr [rbx+56]", "48 0f 43 53 38", {}, 0x257, {}],
  ["shrd r8, r8, cl", "4d 0f ad c0", {}, 0x286, {}],
  ["shrd r9d, edi, 3", "41 0f ac f9 03", { r9: "0xf6fed9d1" }, 0x296, {}],
  ["cmovno r8, qword ptr [rbx+36]", "4c 0f 41 43 24", {}, 0xa42, {}],
  ["btc qword ptr [rbx+57], 1", "48 0f ba 7b 39 01", {}, 0xa93, { 75: 0xe0 }],
  ["setae dl", "0f 93 c2", { rdx: "0x1" }, 0x212, {}],
  ["xchg byte ptr [rbx+77], r12b", "44 86 63 4d", { r12: "0x392a8edf250ee3e8" }, 0x243, { 89: 0xd8 }],
  ["sub sil, byte ptr [rbx+25]", "40 2a 73 19", { rsi: "0xe44b31f5" }, 0x287, {}],
  ["xchg byte ptr [rbx+77], r11b", "44 86 5b 4d", { r11: "0x4300020a" }, 0xa17, { 83: 0x40 }],
  ["movzx r8, word ptr [rbx+79]", "4c 0f b7 43 4f", { r8: "0xaa85" }, 0x256, {}],
  ["movzx r14, byte ptr [rbx+150]", "4c 0f b6 b3 96 00 00 00", { r14: "0xb9" }, 0x2c7, {}],
  ["cmovge ebp, eax", "0f 4d e8", { rbp: "0x7fffffff" }, 0x202, {}],
  ["bts edi, 14", "0f ba ef 0e", {}, 0xa83, {}],
  ["imul rax, rbx", "48 0f af c3", { rax: "0xa5f706dd237da" }, 0x2d2, {}],
  ["cmovns rbx, qword ptr [rbx+120]", "48 0f 49 5b 78", { rbx: "0xeac5a07b56310ce7" }, 0x213, {}],
  ["sbb qword ptr [rbx+24], 128", "48 81 5b 18 80 00 00 00", {}, 0x286, { 41: 0x78 }],
  ["cqo", "48 99", { rdx: "0x0" }, 0x2c7, {}],
  ["rcr qword ptr [rbx+105], cl", "48 d3 5b 69", {}, 0xa16, {}],
  ["sete byte ptr [rbx+117]", "0f 94 43 75", {}, 0xa97, { 157: 0x00 }],
  ["sete byte ptr [rbx+2]", "0f 94 43 02", {}, 0x2d2, { 7: 0x01 }],
  ["shld dx, r12w, cl", "66 44 0f a5 e2", {}, 0x243, {}],
  ["or esi, dword ptr [rbx+43]", "0b 73 2b", { rsi: "0xffffffff" }, 0x286, {}],
  ["movsx r9w, r14b", "66 45 0f be ce", { r9: "0xffffffffffff0001" }, 0xad3, {}],
  ["cmovb r14, r14", "4d 0f 42 f6", {}, 0xa56, {}],
  ["imul rbp, r8", "49 0f af e8", {}, 0x286, {}],
  ["setae byte ptr [rbx+134]", "0f 93 83 86 00 00 00", {}, 0x206, { 185: 0x01 }],
  ["xchg eax, esi", "96", { rax: "0x80000000", rsi: "0x6e986800" }, 0xa57, {}],
  ["btc dword ptr [rbx+15], 25", "0f ba 7b 0f 19", {}, 0xa93, { 63: 0x24 }],
  ["dec word ptr [rbx+87]", "66 ff 4b 57", {}, 0x217, { 97: 0x0f }],
  ["mov r14, 32767", "49 c7 c6 ff 7f 00 00", { r14: "0x7fff" }, 0x242, {}],
  ["xadd qword ptr [rbx+101], rdx", "48 0f c1 53 65", { rdx: "0x3b16f1cca7825d38" }, 0x202, { 108: 0x27, 109: 0xcd }],
  ["cmovb r14d, r10d", "45 0f 42 f2", {}, 0xa16, {}],
  ["inc dword ptr [rbx+74]", "ff 43 4a", {}, 0x207, { 136: 0xb4 }],
  ["cmovne r9, qword ptr [rbx+73]", "4c 0f 45 4b 49", {}, 0x2c6, {}],
  ["mov dword ptr [rbx+26], r10d", "44 89 53 1a", {}, 0x207, { 82: 0x01, 83: 0x00, 84: 0x00, 85: 0x00 }],
  ["xchg byte ptr [rbx+6], dil", "40 86 7b 06", { rdi: "0x800000f2" }, 0x282, { 27: 0x00 }],
  ["sub dword ptr [rbx+109], eax", "29 43 6d", {}, 0x206, { 159: 0x05 }],
  ["shr dword ptr [rbx+46], 1", "d1 6b 2e", {}, 0x216, { 61: 0xee, 62: 0x00, 63: 0x93, 64: 0x25 }],
  ["movsxd r13, r13d", "4d 63 ed", {}, 0x283, {}],
  ["mov dword ptr [rbx+127], r14d", "44 89 73 7f", {}, 0x2c6, { 136: 0x8f, 137: 0xb9, 138: 0x77, 139: 0xd6 }],
  ["rcl word ptr [rbx+3], 4", "66 c1 53 03 04", {}, 0x217, { 41: 0x88, 42: 0xdf }],
  ["movsx bp, byte ptr [rbx+23]", "66 0f be 6b 17", { rbp: "0xffcd" }, 0xa96, {}],
  ["shr r15w, 31", "66 41 c1 ef 1f", { r15: "0x7fff0000" }, 0x256, {}],
  ["movsxd rdx, r12d", "49 63 d4", { rdx: "0x0" }, 0x242, {}],
  ["mov r8b, byte ptr [rbx+67]", "44 8a 43 43", { r8: "0x7c" }, 0x283, {}],
  ["cmpxchg word ptr [rbx+93], r9w", "66 44 0f b1 4b 5d", { rax: "0x7102946f" }, 0x216, {}],
  ["movsx r14, byte ptr [rbx+36]", "4c 0f be 73 24", { r14: "0x23" }, 0xa53, {}],
  ["movzx bp, byte ptr [rbx+95]", "66 0f b6 6b 5f", { rbp: "0x1d4dd11005f800db" }, 0xa86, {}],
  ["and qword ptr [rbx+148], 175", "48 81 a3 94 00 00 00 af 00 00 00", {}, 0x202, { 162: 0x25, 163: 0x00, 164: 0x00, 165: 0x00, 166: 0x00, 167: 0x00, 168: 0x00, 169: 0x00 }],
  ["or dword ptr [rbx+70], 0", "83 4b 46 00", {}, 0x286, {}],
  ["xchg cl, dl", "86 d1", { rcx: "0x796d5a01", rdx: "0x1b" }, 0xa97, {}],
  ["lea r10w, [r9+rbx*8+3357]", "66 45 8d 94 d9 1d 0d 00 00", { r10: "0x95ab9fad" }, 0xa12, {}],
  ["not edx", "f7 d2", { rdx: "0xffffffff" }, 0x243, {}],
  ["mul byte ptr [rbx+75]", "f6 63 4b", { rax: "0x319a1dca" }, 0xac3, {}],
  ["or r13b, 78", "41 80 cd 4e", { r13: "0x58b37afe" }, 0x282, {}],
  ["ror r12w, 1", "66 41 d1 cc", {}, 0x257, {}],
  ["seta r8b", "41 0f 97 c0", {}, 0xac7, {}],
  ["sbb r14, r14", "4d 19 f6", {}, 0x246, {}],
  ["xchg word ptr [rbx+116], r9w", "66 44 87 4b 74", { r9: "0x8cb9e4bf" }, 0x257, { 164: 0x09, 165: 0x88 }],
  ["btc ax, 11", "66 0f ba f8 0b", { rax: "0x7ffff7ff" }, 0x2d3, {}],
  ["neg byte ptr [rbx+84]", "f6 5b 54", {}, 0x293, { 126: 0xbf }],
  ["movsx dx, byte ptr [rbx+26]", "66 0f be 53 1a", { rdx: "0xffd0" }, 0xa82, {}],
  ["lea r8d, [rsi+rax*4+204]", "44 8d 84 86 cc 00 00 00", { r8: "0xcd" }, 0x2c3, {}],
  ["movsxd r13, edi", "4c 63 ef", { r13: "0x1" }, 0x216, {}],
  ["cmovne rbx, rbx", "48 0f 45 db", {}, 0xa97, {}],
  ["add r10w, dx", "66 41 01 d2", { r10: "0x7ffffffe" }, 0x293, {}],
  ["rcl edi, 1", "d1 d7", { rdi: "0xffffffff" }, 0xa46, {}],
  ["btr ebx, r14d", "44 0f b3 f3", {}, 0x282, {}],
  ["xchg byte ptr [rbx+44], al", "86 43 2c", {}, 0x2d3, {}],
  ["mov r15w, word ptr [rbx+129]", "66 44 8b bb 81 00 00 00", { r15: "0x99a83bb8a634a07b" }, 0xa52, {}],
  ["movsxd rbx, r11d", "49 63 db", { rbx: "0x7fffffff" }, 0xa83, {}],
  ["sete bh", "0f 94 c7", {}, 0x206, {}],
  ["cmova cx, word ptr [rbx+127]", "66 0f 47 4b 7f", {}, 0x257, {}],
  ["bswap esi", "0f ce", {}, 0x296, {}],
  ["and cx, word ptr [rbx+19]", "66 23 4b 13", { rcx: "0x91a028ca" }, 0x206, {}],
  ["mul qword ptr [rbx+45]", "48 f7 63 2d", { rax: "0xd5687b0d53f81d43", rdx: "0x604dbb27" }, 0xa43, {}],
  ["cmpxchg bp, cx", "66 0f b1 cd", { rax: "0xffff" }, 0x213, {}],
  ["rcr dword ptr [rbx+113], 1", "d1 5b 71", {}, 0x213, { 136: 0x59, 137: 0xec, 138: 0x7e, 139: 0x11 }],
  ["dec r8", "49 ff c8", { r8: "0x7fffffffffffffff" }, 0xa17, {}],
  ["cmovo rbp, r9", "49 0f 40 e9", { rbp: "0x8000000000000000" }, 0xac6, {}],
  ["dec byte ptr [rbx+56]", "fe 4b 38", {}, 0x283, { 102: 0xc8 }],
  ["bts qword ptr [rbx+7], 51", "48 0f ba 6b 07 33", {}, 0x256, { 24: 0x8b }],
  ["mul byte ptr [rbx+70]", "f6 63 46", { rax: "0x8bc057070e8352d8" }, 0xad7, {}],
  ["xor r10d, dword ptr [rbx+44]", "44 33 53 2c", { r10: "0x872c187c" }, 0x282, {}],
  ["movsx rcx, byte ptr [rbx+2]", "48 0f be 4b 02", { rcx: "0x3f" }, 0xa83, {}],
  ["mov byte ptr [rbx+84], 80", "c6 43 54 50", {}, 0xac2, { 147: 0x50 }],
  ["movzx r11w, byte ptr [rbx+107]", "66 44 0f b6 5b 6b", { r11: "0x7fff008e" }, 0x213, {}],
  ["xadd dword ptr [rbx+48], r10d", "44 0f c1 53 30", { r10: "0xa7825d38" }, 0x293, { 105: 0x37 }],
  ["not dword ptr [rbx+133]", "f7 93 85 00 00 00", {}, 0xac7, { 155: 0x8d, 156: 0x68, 157: 0x43, 158: 0x1e }],
  ["imul dword ptr [rbx+0]", "f7 2b", { rax: "0x264b7096", rdx: "0x0" }, 0x246, {}],
  ["lea r8, [r10+rdi*8-3164]", "4d 8d 84 fa a4 f3 ff ff", { r8: "0x3fffff39d" }, 0xa97, {}],
  ["lea r9, [r15+rdx*8-1234]", "4d 8d 8c d7 2e fb ff ff", { r9: "0x659c65866" }, 0x2d2, {}],
  ["sub r15d, dword ptr [rbx+131]", "44 2b bb 83 00 00 00", { r15: "0xdbba4ba7" }, 0x293, {}],
  ["movsx r15d, al", "44 0f be f8", { r15: "0x6e" }, 0xa82, {}],
  ["bts word ptr [rbx+87], 6", "66 0f ba 6b 57 06", {}, 0xa02, { 91: 0x72 }],
  ["setge cl", "0f 9d c1", { rcx: "0x8000000000000001" }, 0x256, {}],
  ["ror r13d, 1", "41 d1 cd", {}, 0x296, {}],
  ["movsx r15d, bp", "44 0f bf fd", { r15: "0x1" }, 0x206, {}],
  ["lzcnt rsi, r14", "f3 49 0f bd f6", { rsi: "0x20" }, 0xa02, {}],
  ["sbb bh, byte ptr [rbx+38]", "1a 7b 26", { rbx: "0x186e15" }, 0x213, {}],
  ["xchg rax, r9", "49 91", { rax: "0x0", r9: "0x1" }, 0x213, {}],
  ["sbb r14w, word ptr [rbx+78]", "66 44 1b 73 4e", { r14: "0x7fff5e83" }, 0x202, {}],
  ["bswap r11d", "41 0f cb", { r11: "0xffffff7f" }, 0x2c3, {}],
  ["sbb r10w, r10w", "66 45 19 d2", { r10: "0xffffffffffff0000" }, 0x246, {}],
  ["inc word ptr [rbx+96]", "66 ff 43 60", {}, 0x287, { 134: 0x6a }],
  ["xor qword ptr [rbx+130], 0", "48 83 b3 82 00 00 00 00", {}, 0x206, {}],
  ["mul r15w", "66 41 f7 e7", { rax: "0xcd87521809e89ef0", rdx: "0x610f" }, 0xa07, {}],
  ["imul r8, rbx", "4c 0f af c3", { r8: "0xc001e7fe7ffc3" }, 0x282, {}],
  ["and word ptr [rbx+50], 127", "66 83 63 32 7f", {}, 0x202, { 77: 0x00 }],
  ["xor byte ptr [rbx+135], ah", "30 a3 87 00 00 00", {}, 0x282, { 190: 0xb0 }],];

const M64 = (1n << 64n) - 1n;

/** Inputs for case `index`: 16 registers (RSP 0, RBX pointing into the window) and RFLAGS. */
function inputs(index: number): { regs: bigint[]; flags: number } {
  let state = (BigInt(index) * 2654435761n + 12345n) & M64;
  const next = () => (state = (state * 6364136223846793005n + 1442695040888963407n) & M64);
  const regs: bigint[] = [];
  for (let i = 0; i < 16; i++) {
    const v = next();
    regs.push([v, 0n, 1n, M64, 1n << 63n, 0x7fffffffn, 0x80000000n, v >> 32n][Number(v & 7n)]);
  }
  regs[4] = 0n;
  regs[3] = BigInt(WINDOW) + (next() % 64n);
  return { regs, flags: 0x202 | Number(next() & 0x8d5n) };
}

/** Flags the SDM leaves undefined (or that depend on the count in ways the corpus does not pin down). */
function undefinedFlags(asm: string): number {
  const op = asm.split(" ")[0];
  if (["and", "or", "xor", "test"].includes(op)) return AF;
  if (["shl", "shr", "sar"].includes(op)) return AF | OF | CF;
  if (["rol", "ror", "rcl", "rcr"].includes(op)) return OF;
  if (["shld", "shrd"].includes(op)) return STATUS;
  if (["mul", "imul"].includes(op)) return SF | ZF | AF | PF;
  if (["bt", "bts", "btr", "btc"].includes(op)) return OF | SF | AF | PF;
  if (["bsf", "bsr"].includes(op)) return CF | OF | SF | AF | PF;
  if (["tzcnt", "lzcnt"].includes(op)) return OF | SF | AF | PF;
  return 0;
}

/** 16-bit SHLD/SHRD by more than 16 leave the destination undefined. */
function undefinedResult(asm: string, regs: bigint[]): boolean {
  return /^sh[lr]d (?:[a-d]x|[sd]i|bp|r\d+w),/.test(asm) && asm.endsWith(", cl") && Number(regs[1] & 31n) > 16;
}

describe("host corpus", () => {
  it.each(CORPUS.map((c, i) => [c[0], i, c] as const))("%s matches the host", (asm, index, [, code, changed, flagsAfter, memory]) => {
    const { regs, flags } = inputs(index);
    const m = new TestMachine();
    regs.forEach((v, i) => {
      if (i !== 4) m.setReg(NAMES[i], v);
    });
    m.rflags = flags;
    for (let i = 0; i < 256; i++) m.ram[WINDOW + i] = (i * 37 + 11) & 0xff;
    expect(m.runCode(`${code} f4`, 10)).toEqual({ kind: "halted" });

    if (!undefinedResult(asm, regs)) {
      const expected = NAMES.map((n, i) => (i === 4 ? null : changed[n] !== undefined ? BigInt(changed[n]!) : regs[i]));
      expect(NAMES.map((n, i) => (i === 4 ? null : m.reg(n)))).toEqual(expected);
    }
    const mask = STATUS & ~undefinedFlags(asm);
    expect(m.rflags & mask).toBe(flagsAfter & mask);
    const window = Array.from({ length: 256 }, (_, i) => (memory[i] !== undefined ? memory[i] : (i * 37 + 11) & 0xff));
    expect(Array.from(m.ram.subarray(WINDOW, WINDOW + 256))).toEqual(window);
  });
});
