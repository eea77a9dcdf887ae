//go:build amd64 && !purego

#include "textflag.h"

// AVX2+FMA kernels for the two transcendental hot spots: the GELU forward
// (tanh) and softmax's exponentials. Each processes n elements, n a multiple
// of 8; the Go callers handle the tail with the scalar functions in mathf.go
// and only call these when UseSIMD (goreweight/internal/cpu) reports support. The math is the
// same as the scalar versions (same polynomials), evaluated with FMA.

//   0: sqrt(2/pi)
DATA geluc<>+0(SB)/4, $0x3f4c422a
DATA geluc<>+4(SB)/4, $0x3f4c422a
DATA geluc<>+8(SB)/4, $0x3f4c422a
DATA geluc<>+12(SB)/4, $0x3f4c422a
DATA geluc<>+16(SB)/4, $0x3f4c422a
DATA geluc<>+20(SB)/4, $0x3f4c422a
DATA geluc<>+24(SB)/4, $0x3f4c422a
DATA geluc<>+28(SB)/4, $0x3f4c422a
//  32: sqrt(2/pi)*0.044715
DATA geluc<>+32(SB)/4, $0x3d122279
DATA geluc<>+36(SB)/4, $0x3d122279
DATA geluc<>+40(SB)/4, $0x3d122279
DATA geluc<>+44(SB)/4, $0x3d122279
DATA geluc<>+48(SB)/4, $0x3d122279
DATA geluc<>+52(SB)/4, $0x3d122279
DATA geluc<>+56(SB)/4, $0x3d122279
DATA geluc<>+60(SB)/4, $0x3d122279
//  64: clamp
DATA geluc<>+64(SB)/4, $0x40fcf84f
DATA geluc<>+68(SB)/4, $0x40fcf84f
DATA geluc<>+72(SB)/4, $0x40fcf84f
DATA geluc<>+76(SB)/4, $0x40fcf84f
DATA geluc<>+80(SB)/4, $0x40fcf84f
DATA geluc<>+84(SB)/4, $0x40fcf84f
DATA geluc<>+88(SB)/4, $0x40fcf84f
DATA geluc<>+92(SB)/4, $0x40fcf84f
//  96: -clamp
DATA geluc<>+96(SB)/4, $0xc0fcf84f
DATA geluc<>+100(SB)/4, $0xc0fcf84f
DATA geluc<>+104(SB)/4, $0xc0fcf84f
DATA geluc<>+108(SB)/4, $0xc0fcf84f
DATA geluc<>+112(SB)/4, $0xc0fcf84f
DATA geluc<>+116(SB)/4, $0xc0fcf84f
DATA geluc<>+120(SB)/4, $0xc0fcf84f
DATA geluc<>+124(SB)/4, $0xc0fcf84f
// 128: a13
DATA geluc<>+128(SB)/4, $0xa59f25c0
DATA geluc<>+132(SB)/4, $0xa59f25c0
DATA geluc<>+136(SB)/4, $0xa59f25c0
DATA geluc<>+140(SB)/4, $0xa59f25c0
DATA geluc<>+144(SB)/4, $0xa59f25c0
DATA geluc<>+148(SB)/4, $0xa59f25c0
DATA geluc<>+152(SB)/4, $0xa59f25c0
DATA geluc<>+156(SB)/4, $0xa59f25c0
// 160: a11
DATA geluc<>+160(SB)/4, $0x2a61337e
DATA geluc<>+164(SB)/4, $0x2a61337e
DATA geluc<>+168(SB)/4, $0x2a61337e
DATA geluc<>+172(SB)/4, $0x2a61337e
DATA geluc<>+176(SB)/4, $0x2a61337e
DATA geluc<>+180(SB)/4, $0x2a61337e
DATA geluc<>+184(SB)/4, $0x2a61337e
DATA geluc<>+188(SB)/4, $0x2a61337e
// 192: a9
DATA geluc<>+192(SB)/4, $0xaebd37ff
DATA geluc<>+196(SB)/4, $0xaebd37ff
DATA geluc<>+200(SB)/4, $0xaebd37ff
DATA geluc<>+204(SB)/4, $0xaebd37ff
DATA geluc<>+208(SB)/4, $0xaebd37ff
DATA geluc<>+212(SB)/4, $0xaebd37ff
DATA geluc<>+216(SB)/4, $0xaebd37ff
DATA geluc<>+220(SB)/4, $0xaebd37ff
// 224: a7
DATA geluc<>+224(SB)/4, $0x335c0041
DATA geluc<>+228(SB)/4, $0x335c0041
DATA geluc<>+232(SB)/4, $0x335c0041
DATA geluc<>+236(SB)/4, $0x335c0041
DATA geluc<>+240(SB)/4, $0x335c0041
DATA geluc<>+244(SB)/4, $0x335c0041
DATA geluc<>+248(SB)/4, $0x335c0041
DATA geluc<>+252(SB)/4, $0x335c0041
// 256: a5
DATA geluc<>+256(SB)/4, $0x3779434a
DATA geluc<>+260(SB)/4, $0x3779434a
DATA geluc<>+264(SB)/4, $0x3779434a
DATA geluc<>+268(SB)/4, $0x3779434a
DATA geluc<>+272(SB)/4, $0x3779434a
DATA geluc<>+276(SB)/4, $0x3779434a
DATA geluc<>+280(SB)/4, $0x3779434a
DATA geluc<>+284(SB)/4, $0x3779434a
// 288: a3
DATA geluc<>+288(SB)/4, $0x3a270ded
DATA geluc<>+292(SB)/4, $0x3a270ded
DATA geluc<>+296(SB)/4, $0x3a270ded
DATA geluc<>+300(SB)/4, $0x3a270ded
DATA geluc<>+304(SB)/4, $0x3a270ded
DATA geluc<>+308(SB)/4, $0x3a270ded
DATA geluc<>+312(SB)/4, $0x3a270ded
DATA geluc<>+316(SB)/4, $0x3a270ded
// 320: a1
DATA geluc<>+320(SB)/4, $0x3ba059dc
DATA geluc<>+324(SB)/4, $0x3ba059dc
DATA geluc<>+328(SB)/4, $0x3ba059dc
DATA geluc<>+332(SB)/4, $0x3ba059dc
DATA geluc<>+336(SB)/4, $0x3ba059dc
DATA geluc<>+340(SB)/4, $0x3ba059dc
DATA geluc<>+344(SB)/4, $0x3ba059dc
DATA geluc<>+348(SB)/4, $0x3ba059dc
// 352: b6
DATA geluc<>+352(SB)/4, $0x35a0d3d8
DATA geluc<>+356(SB)/4, $0x35a0d3d8
DATA geluc<>+360(SB)/4, $0x35a0d3d8
DATA geluc<>+364(SB)/4, $0x35a0d3d8
DATA geluc<>+368(SB)/4, $0x35a0d3d8
DATA geluc<>+372(SB)/4, $0x35a0d3d8
DATA geluc<>+376(SB)/4, $0x35a0d3d8
DATA geluc<>+380(SB)/4, $0x35a0d3d8
// 384: b4
DATA geluc<>+384(SB)/4, $0x38f895d6
DATA geluc<>+388(SB)/4, $0x38f895d6
DATA geluc<>+392(SB)/4, $0x38f895d6
DATA geluc<>+396(SB)/4, $0x38f895d6
DATA geluc<>+400(SB)/4, $0x38f895d6
DATA geluc<>+404(SB)/4, $0x38f895d6
DATA geluc<>+408(SB)/4, $0x38f895d6
DATA geluc<>+412(SB)/4, $0x38f895d6
// 416: b2
DATA geluc<>+416(SB)/4, $0x3b14aa05
DATA geluc<>+420(SB)/4, $0x3b14aa05
DATA geluc<>+424(SB)/4, $0x3b14aa05
DATA geluc<>+428(SB)/4, $0x3b14aa05
DATA geluc<>+432(SB)/4, $0x3b14aa05
DATA geluc<>+436(SB)/4, $0x3b14aa05
DATA geluc<>+440(SB)/4, $0x3b14aa05
DATA geluc<>+444(SB)/4, $0x3b14aa05
// 448: b0
DATA geluc<>+448(SB)/4, $0x3ba059dd
DATA geluc<>+452(SB)/4, $0x3ba059dd
DATA geluc<>+456(SB)/4, $0x3ba059dd
DATA geluc<>+460(SB)/4, $0x3ba059dd
DATA geluc<>+464(SB)/4, $0x3ba059dd
DATA geluc<>+468(SB)/4, $0x3ba059dd
DATA geluc<>+472(SB)/4, $0x3ba059dd
DATA geluc<>+476(SB)/4, $0x3ba059dd
// 480: 0.5
DATA geluc<>+480(SB)/4, $0x3f000000
DATA geluc<>+484(SB)/4, $0x3f000000
DATA geluc<>+488(SB)/4, $0x3f000000
DATA geluc<>+492(SB)/4, $0x3f000000
DATA geluc<>+496(SB)/4, $0x3f000000
DATA geluc<>+500(SB)/4, $0x3f000000
DATA geluc<>+504(SB)/4, $0x3f000000
DATA geluc<>+508(SB)/4, $0x3f000000
// 512: abs mask
DATA geluc<>+512(SB)/4, $0x7fffffff
DATA geluc<>+516(SB)/4, $0x7fffffff
DATA geluc<>+520(SB)/4, $0x7fffffff
DATA geluc<>+524(SB)/4, $0x7fffffff
DATA geluc<>+528(SB)/4, $0x7fffffff
DATA geluc<>+532(SB)/4, $0x7fffffff
DATA geluc<>+536(SB)/4, $0x7fffffff
DATA geluc<>+540(SB)/4, $0x7fffffff
// 544: sign mask
DATA geluc<>+544(SB)/4, $0x80000000
DATA geluc<>+548(SB)/4, $0x80000000
DATA geluc<>+552(SB)/4, $0x80000000
DATA geluc<>+556(SB)/4, $0x80000000
DATA geluc<>+560(SB)/4, $0x80000000
DATA geluc<>+564(SB)/4, $0x80000000
DATA geluc<>+568(SB)/4, $0x80000000
DATA geluc<>+572(SB)/4, $0x80000000
// 576: 1
DATA geluc<>+576(SB)/4, $0x3f800000
DATA geluc<>+580(SB)/4, $0x3f800000
DATA geluc<>+584(SB)/4, $0x3f800000
DATA geluc<>+588(SB)/4, $0x3f800000
DATA geluc<>+592(SB)/4, $0x3f800000
DATA geluc<>+596(SB)/4, $0x3f800000
DATA geluc<>+600(SB)/4, $0x3f800000
DATA geluc<>+604(SB)/4, $0x3f800000
// 608: 3*0.044715*sqrt(2/pi)
DATA geluc<>+608(SB)/4, $0x3ddb33b6
DATA geluc<>+612(SB)/4, $0x3ddb33b6
DATA geluc<>+616(SB)/4, $0x3ddb33b6
DATA geluc<>+620(SB)/4, $0x3ddb33b6
DATA geluc<>+624(SB)/4, $0x3ddb33b6
DATA geluc<>+628(SB)/4, $0x3ddb33b6
DATA geluc<>+632(SB)/4, $0x3ddb33b6
DATA geluc<>+636(SB)/4, $0x3ddb33b6
GLOBL geluc<>(SB), RODATA|NOPTR, $640

// func geluFwdAVX2(out, th, in *float32, n int)
// out[i] = x/2*(1+tanh(u)), th[i] = tanh(u), u = sqrt(2/pi)*(x+0.044715x^3).
TEXT ·geluFwdAVX2(SB), NOSPLIT, $0-32
	MOVQ out+0(FP), DI
	MOVQ th+8(FP), SI
	MOVQ in+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   gelu_done
	VMOVUPS geluc<>+64(SB), Y8  // clamp
	VMOVUPS geluc<>+96(SB), Y9  // -clamp

gelu_loop:
	VMOVUPS (DX), Y0                    // x
	VMULPS  Y0, Y0, Y1                  // x2
	VMOVUPS geluc<>+32(SB), Y2
	VFMADD213PS geluc<>+0(SB), Y1, Y2   // S + SK*x2
	VMULPS  Y2, Y0, Y2                  // u
	VANDPS  geluc<>+512(SB), Y2, Y10    // |u|
	VCMPPS  $13, Y8, Y10, Y10           // sat = |u| >= clamp: tanh is ±1
	VANDPS  geluc<>+544(SB), Y2, Y11    // sign of u
	VORPS   geluc<>+576(SB), Y11, Y11   // ±1
	VMINPS  Y2, Y8, Y2                  // min(clamp, u), NaN u kept
	VMAXPS  Y2, Y9, Y2                  // max(-clamp, u), NaN u kept
	VMULPS  Y2, Y2, Y3                  // u2
	VMOVUPS geluc<>+128(SB), Y4         // p = a13
	VFMADD213PS geluc<>+160(SB), Y3, Y4 // p = p*u2 + a11
	VFMADD213PS geluc<>+192(SB), Y3, Y4 // a9
	VFMADD213PS geluc<>+224(SB), Y3, Y4 // a7
	VFMADD213PS geluc<>+256(SB), Y3, Y4 // a5
	VFMADD213PS geluc<>+288(SB), Y3, Y4 // a3
	VFMADD213PS geluc<>+320(SB), Y3, Y4 // a1
	VMULPS  Y2, Y4, Y4                  // p *= u
	VMOVUPS geluc<>+352(SB), Y5         // q = b6
	VFMADD213PS geluc<>+384(SB), Y3, Y5 // q = q*u2 + b4
	VFMADD213PS geluc<>+416(SB), Y3, Y5 // b2
	VFMADD213PS geluc<>+448(SB), Y3, Y5 // b0
	VDIVPS  Y5, Y4, Y4                  // t = p/q
	VBLENDVPS Y10, Y11, Y4, Y4          // t = sat ? ±1 : t
	VMOVUPS Y4, (SI)
	VMULPS  geluc<>+480(SB), Y0, Y6     // hx = x/2
	VFMADD213PS Y6, Y6, Y4              // hx*t + hx
	VMOVUPS Y4, (DI)
	ADDQ $32, DX
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  gelu_loop

gelu_done:
	VZEROUPPER
	RET

//   0: lo
DATA expc<>+0(SB)/4, $0xc2ae999a
DATA expc<>+4(SB)/4, $0xc2ae999a
DATA expc<>+8(SB)/4, $0xc2ae999a
DATA expc<>+12(SB)/4, $0xc2ae999a
DATA expc<>+16(SB)/4, $0xc2ae999a
DATA expc<>+20(SB)/4, $0xc2ae999a
DATA expc<>+24(SB)/4, $0xc2ae999a
DATA expc<>+28(SB)/4, $0xc2ae999a
//  32: hi
DATA expc<>+32(SB)/4, $0x42b00000
DATA expc<>+36(SB)/4, $0x42b00000
DATA expc<>+40(SB)/4, $0x42b00000
DATA expc<>+44(SB)/4, $0x42b00000
DATA expc<>+48(SB)/4, $0x42b00000
DATA expc<>+52(SB)/4, $0x42b00000
DATA expc<>+56(SB)/4, $0x42b00000
DATA expc<>+60(SB)/4, $0x42b00000
//  64: log2e
DATA expc<>+64(SB)/4, $0x3fb8aa3b
DATA expc<>+68(SB)/4, $0x3fb8aa3b
DATA expc<>+72(SB)/4, $0x3fb8aa3b
DATA expc<>+76(SB)/4, $0x3fb8aa3b
DATA expc<>+80(SB)/4, $0x3fb8aa3b
DATA expc<>+84(SB)/4, $0x3fb8aa3b
DATA expc<>+88(SB)/4, $0x3fb8aa3b
DATA expc<>+92(SB)/4, $0x3fb8aa3b
//  96: magic
DATA expc<>+96(SB)/4, $0x4b400000
DATA expc<>+100(SB)/4, $0x4b400000
DATA expc<>+104(SB)/4, $0x4b400000
DATA expc<>+108(SB)/4, $0x4b400000
DATA expc<>+112(SB)/4, $0x4b400000
DATA expc<>+116(SB)/4, $0x4b400000
DATA expc<>+120(SB)/4, $0x4b400000
DATA expc<>+124(SB)/4, $0x4b400000
// 128: c1
DATA expc<>+128(SB)/4, $0x3f318000
DATA expc<>+132(SB)/4, $0x3f318000
DATA expc<>+136(SB)/4, $0x3f318000
DATA expc<>+140(SB)/4, $0x3f318000
DATA expc<>+144(SB)/4, $0x3f318000
DATA expc<>+148(SB)/4, $0x3f318000
DATA expc<>+152(SB)/4, $0x3f318000
DATA expc<>+156(SB)/4, $0x3f318000
// 160: c2
DATA expc<>+160(SB)/4, $0xb95e8083
DATA expc<>+164(SB)/4, $0xb95e8083
DATA expc<>+168(SB)/4, $0xb95e8083
DATA expc<>+172(SB)/4, $0xb95e8083
DATA expc<>+176(SB)/4, $0xb95e8083
DATA expc<>+180(SB)/4, $0xb95e8083
DATA expc<>+184(SB)/4, $0xb95e8083
DATA expc<>+188(SB)/4, $0xb95e8083
// 192: p0
DATA expc<>+192(SB)/4, $0x39506967
DATA expc<>+196(SB)/4, $0x39506967
DATA expc<>+200(SB)/4, $0x39506967
DATA expc<>+204(SB)/4, $0x39506967
DATA expc<>+208(SB)/4, $0x39506967
DATA expc<>+212(SB)/4, $0x39506967
DATA expc<>+216(SB)/4, $0x39506967
DATA expc<>+220(SB)/4, $0x39506967
// 224: p1
DATA expc<>+224(SB)/4, $0x3ab743ce
DATA expc<>+228(SB)/4, $0x3ab743ce
DATA expc<>+232(SB)/4, $0x3ab743ce
DATA expc<>+236(SB)/4, $0x3ab743ce
DATA expc<>+240(SB)/4, $0x3ab743ce
DATA expc<>+244(SB)/4, $0x3ab743ce
DATA expc<>+248(SB)/4, $0x3ab743ce
DATA expc<>+252(SB)/4, $0x3ab743ce
// 256: p2
DATA expc<>+256(SB)/4, $0x3c088908
DATA expc<>+260(SB)/4, $0x3c088908
DATA expc<>+264(SB)/4, $0x3c088908
DATA expc<>+268(SB)/4, $0x3c088908
DATA expc<>+272(SB)/4, $0x3c088908
DATA expc<>+276(SB)/4, $0x3c088908
DATA expc<>+280(SB)/4, $0x3c088908
DATA expc<>+284(SB)/4, $0x3c088908
// 288: p3
DATA expc<>+288(SB)/4, $0x3d2aa9c1
DATA expc<>+292(SB)/4, $0x3d2aa9c1
DATA expc<>+296(SB)/4, $0x3d2aa9c1
DATA expc<>+300(SB)/4, $0x3d2aa9c1
DATA expc<>+304(SB)/4, $0x3d2aa9c1
DATA expc<>+308(SB)/4, $0x3d2aa9c1
DATA expc<>+312(SB)/4, $0x3d2aa9c1
DATA expc<>+316(SB)/4, $0x3d2aa9c1
// 320: p4
DATA expc<>+320(SB)/4, $0x3e2aaaaa
DATA expc<>+324(SB)/4, $0x3e2aaaaa
DATA expc<>+328(SB)/4, $0x3e2aaaaa
DATA expc<>+332(SB)/4, $0x3e2aaaaa
DATA expc<>+336(SB)/4, $0x3e2aaaaa
DATA expc<>+340(SB)/4, $0x3e2aaaaa
DATA expc<>+344(SB)/4, $0x3e2aaaaa
DATA expc<>+348(SB)/4, $0x3e2aaaaa
// 352: p5
DATA expc<>+352(SB)/4, $0x3f000000
DATA expc<>+356(SB)/4, $0x3f000000
DATA expc<>+360(SB)/4, $0x3f000000
DATA expc<>+364(SB)/4, $0x3f000000
DATA expc<>+368(SB)/4, $0x3f000000
DATA expc<>+372(SB)/4, $0x3f000000
DATA expc<>+376(SB)/4, $0x3f000000
DATA expc<>+380(SB)/4, $0x3f000000
// 384: 1
DATA expc<>+384(SB)/4, $0x3f800000
DATA expc<>+388(SB)/4, $0x3f800000
DATA expc<>+392(SB)/4, $0x3f800000
DATA expc<>+396(SB)/4, $0x3f800000
DATA expc<>+400(SB)/4, $0x3f800000
DATA expc<>+404(SB)/4, $0x3f800000
DATA expc<>+408(SB)/4, $0x3f800000
DATA expc<>+412(SB)/4, $0x3f800000
// 416: (127 - bits(magic)) as int32
DATA expc<>+416(SB)/4, $0xb4c0007f
DATA expc<>+420(SB)/4, $0xb4c0007f
DATA expc<>+424(SB)/4, $0xb4c0007f
DATA expc<>+428(SB)/4, $0xb4c0007f
DATA expc<>+432(SB)/4, $0xb4c0007f
DATA expc<>+436(SB)/4, $0xb4c0007f
DATA expc<>+440(SB)/4, $0xb4c0007f
DATA expc<>+444(SB)/4, $0xb4c0007f
GLOBL expc<>(SB), RODATA|NOPTR, $448

// func expSumAVX2(x *float32, n int, shift float32) float32
// x[i] = exp(x[i] - shift) in place (0 where x[i] - shift < -87.3, NaN kept,
// saturating at exp(88)); returns the sum of the new x[i] (8 lanes, then
// pairwise).
TEXT ·expSumAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS shift+16(FP), Y15
	VXORPS Y14, Y14, Y14                // sum
	SHRQ $3, CX
	JZ   exp_done
	VMOVUPS expc<>+0(SB), Y12           // lo
	VMOVUPS expc<>+32(SB), Y13          // hi

exp_loop:
	VMOVUPS (DI), Y0
	VSUBPS  Y15, Y0, Y0                 // v = x - shift
	VMINPS  Y0, Y13, Y0                 // min(hi, v), NaN v kept
	VCMPPS  $5, Y12, Y0, Y7             // keep = !(v < lo): true for NaN
	VMOVUPS expc<>+64(SB), Y2
	VFMADD213PS expc<>+96(SB), Y0, Y2   // fn = v*log2e + magic
	VSUBPS  expc<>+96(SB), Y2, Y3       // f = fn - magic = round(v*log2e)
	VMOVAPS Y0, Y1
	VFNMADD231PS expc<>+128(SB), Y3, Y1 // r = v - f*c1
	VFNMADD231PS expc<>+160(SB), Y3, Y1 // r -= f*c2
	VMOVUPS expc<>+192(SB), Y4          // p = p0
	VFMADD213PS expc<>+224(SB), Y1, Y4  // p = p*r + p1
	VFMADD213PS expc<>+256(SB), Y1, Y4  // p2
	VFMADD213PS expc<>+288(SB), Y1, Y4  // p3
	VFMADD213PS expc<>+320(SB), Y1, Y4  // p4
	VFMADD213PS expc<>+352(SB), Y1, Y4  // p5
	VMULPS  Y1, Y4, Y4                  // p*r
	VFMADD213PS Y1, Y1, Y4              // p*r*r + r
	VADDPS  expc<>+384(SB), Y4, Y4      // + 1
	VPADDD  expc<>+416(SB), Y2, Y5      // n + 127 (from the bits of fn)
	VPSLLD  $23, Y5, Y5                 // 2**n
	VMULPS  Y5, Y4, Y4
	VANDPS  Y7, Y4, Y4                  // 0 below lo
	VMOVUPS Y4, (DI)
	VADDPS  Y4, Y14, Y14
	ADDQ $32, DI
	DECQ CX
	JNZ  exp_loop

exp_done:
	VEXTRACTF128 $1, Y14, X13
	VADDPS  X13, X14, X14
	VHADDPS X14, X14, X14
	VHADDPS X14, X14, X14
	VZEROUPPER
	MOVSS X14, ret+24(FP)
	RET

// func geluBwdAVX2(dIn, dOut, in, th *float32, n int)
// dIn[i] += dOut[i] * gelu'(x), gelu'(x) = (1+t)/2 + x/2*(1-t*t)*S*(1+3K*x*x).
TEXT ·geluBwdAVX2(SB), NOSPLIT, $0-40
	MOVQ dIn+0(FP), DI
	MOVQ dOut+8(FP), SI
	MOVQ in+16(FP), DX
	MOVQ th+24(FP), R8
	MOVQ n+32(FP), CX
	SHRQ $3, CX
	JZ   geluBwd_done
	VMOVUPS geluc<>+480(SB), Y8         // 0.5
	VMOVUPS geluc<>+576(SB), Y9         // 1
	VMOVUPS geluc<>+0(SB), Y10          // S
	VMOVUPS geluc<>+608(SB), Y11        // 3KS

geluBwd_loop:
	VMOVUPS (DX), Y0                    // x
	VMOVUPS (R8), Y1                    // t
	VMULPS  Y0, Y0, Y2                  // x2
	VMOVAPS Y11, Y3
	VFMADD213PS Y10, Y2, Y3             // a = 3KS*x2 + S
	VMOVAPS Y9, Y4
	VFNMADD231PS Y1, Y1, Y4             // s = 1 - t*t
	VMULPS  Y8, Y0, Y5                  // x/2
	VMULPS  Y5, Y4, Y4                  // x/2 * s
	VMULPS  Y3, Y4, Y4                  // * a
	VMOVAPS Y8, Y6
	VFMADD213PS Y8, Y1, Y6              // (1+t)/2 = 0.5*t + 0.5
	VADDPS  Y4, Y6, Y6                  // g
	VMOVUPS (DI), Y7
	VFMADD231PS (SI), Y6, Y7            // dIn += g * dOut
	VMOVUPS Y7, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, R8
	DECQ CX
	JNZ  geluBwd_loop

geluBwd_done:
	VZEROUPPER
	RET
