//go:build amd64 && !purego

#include "textflag.h"

// func adamwAVX(data, grad, m, v *float32, n int, k *[8]float64)
// Per element, in float64 (Plan 9 operand order: src2, src1, dst):
//   mi = b1*m + (1-b1)*g;  vi = b2*v + ((1-b2)*g)*g
//   m, v = float32(mi), float32(vi)
//   data = float32(data*decay - (stepSize*mi) / (sqrt(vi)/sqrtBC2 + eps))
TEXT ·adamwAVX(SB), NOSPLIT, $0-48
	MOVQ data+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ k+40(FP), AX
	VBROADCASTSD 0(AX), Y10  // b1
	VBROADCASTSD 8(AX), Y11  // 1-b1
	VBROADCASTSD 16(AX), Y12 // b2
	VBROADCASTSD 24(AX), Y13 // 1-b2
	VBROADCASTSD 32(AX), Y14 // decay
	VBROADCASTSD 40(AX), Y15 // stepSize
	XORQ BX, BX

loop:
	CMPQ BX, CX
	JGE  done
	VCVTPS2PD (SI)(BX*4), Y0 // g
	VCVTPS2PD (R8)(BX*4), Y1 // m
	VMULPD    Y10, Y1, Y1    // b1*m
	VMULPD    Y11, Y0, Y2    // (1-b1)*g
	VADDPD    Y2, Y1, Y1     // mi
	VCVTPS2PD (R9)(BX*4), Y3 // v
	VMULPD    Y12, Y3, Y3    // b2*v
	VMULPD    Y13, Y0, Y4    // (1-b2)*g
	VMULPD    Y0, Y4, Y4     // ((1-b2)*g)*g
	VADDPD    Y4, Y3, Y3     // vi
	VCVTPD2PSY Y1, X5
	VMOVUPS   X5, (R8)(BX*4)
	VCVTPD2PSY Y3, X6
	VMOVUPS   X6, (R9)(BX*4)
	VCVTPS2PD (DI)(BX*4), Y7 // data
	VMULPD    Y14, Y7, Y7    // x = data*decay
	VSQRTPD   Y3, Y8         // sqrt(vi)
	VBROADCASTSD 48(AX), Y9
	VDIVPD    Y9, Y8, Y8     // sqrt(vi)/sqrtBC2
	VBROADCASTSD 56(AX), Y9
	VADDPD    Y9, Y8, Y8     // + eps
	VMULPD    Y15, Y1, Y9    // stepSize*mi
	VDIVPD    Y8, Y9, Y9     // (stepSize*mi)/(...)
	VSUBPD    Y9, Y7, Y7     // x - ...
	VCVTPD2PSY Y7, X7
	VMOVUPS   X7, (DI)(BX*4)
	ADDQ $4, BX
	JMP  loop

done:
	VZEROUPPER
	RET
