// Package compare holds what sampler comparisons measure and write: end-point errors, trajectory
// straightness, distribution distances and convergence-order fits; image metrics (PSNR, SSIM);
// labelled image and scatter grids, log–log plots, metrics.csv and report.md. It may import pipeline and
// scheduler (DESIGN.md); scheduler stays free of it.
package compare
