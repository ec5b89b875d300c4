#include "textflag.h"

// func getppidImmediate() uintptr
TEXT ·getppidImmediate(SB),NOSPLIT,$0-8
	BYTE	$0xb8; LONG $110	// MOVL $SYS_getppid, AX
	SYSCALL
	MOVQ	AX, ret+0(FP)
	RET
