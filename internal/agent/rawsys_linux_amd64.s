#include "textflag.h"

// System calls with the number loaded by an immediate "mov $sysno, %eax"
// right before SYSCALL (encoded by hand so that the assembler cannot pick
// another form): gVisor's systrap platform patches exactly that pattern
// into a jump to its trampoline after the first trap, so later calls skip
// the seccomp SIGSYS. See rawio_linux.go.


// func sysRead(fd, p, n uintptr) (r, errno uintptr)
TEXT ·sysRead(SB),NOSPLIT,$0-40
	MOVQ	fd+0(FP), DI
	MOVQ	p+8(FP), SI
	MOVQ	n+16(FP), DX
	BYTE	$0xb8; LONG $0	// MOVL $SYS_read, AX
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JLS	readok
	MOVQ	$-1, r+24(FP)
	NEGQ	AX
	MOVQ	AX, errno+32(FP)
	RET
readok:
	MOVQ	AX, r+24(FP)
	MOVQ	$0, errno+32(FP)
	RET

// func sysWrite(fd, p, n uintptr) (r, errno uintptr)
TEXT ·sysWrite(SB),NOSPLIT,$0-40
	MOVQ	fd+0(FP), DI
	MOVQ	p+8(FP), SI
	MOVQ	n+16(FP), DX
	BYTE	$0xb8; LONG $1	// MOVL $SYS_write, AX
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JLS	writeok
	MOVQ	$-1, r+24(FP)
	NEGQ	AX
	MOVQ	AX, errno+32(FP)
	RET
writeok:
	MOVQ	AX, r+24(FP)
	MOVQ	$0, errno+32(FP)
	RET

// func sysIoctl(fd, req, arg uintptr) (r, errno uintptr)
TEXT ·sysIoctl(SB),NOSPLIT,$0-40
	MOVQ	fd+0(FP), DI
	MOVQ	req+8(FP), SI
	MOVQ	arg+16(FP), DX
	BYTE	$0xb8; LONG $16	// MOVL $SYS_ioctl, AX
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JLS	ioctlok
	MOVQ	$-1, r+24(FP)
	NEGQ	AX
	MOVQ	AX, errno+32(FP)
	RET
ioctlok:
	MOVQ	AX, r+24(FP)
	MOVQ	$0, errno+32(FP)
	RET
