// Package goreweight is the core of goreweight: dynamic loss-based sample
// reweighting for language-model pretraining (Sow et al., "Dynamic Loss-Based
// Sample Reweighting for Improved Large Language Model Pretraining", ICLR 2025,
// arXiv 2502.06733).
package goreweight
