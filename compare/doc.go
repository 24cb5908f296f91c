// Package compare runs sampler comparisons and writes what they measure: the grids on the analytic
// flow (RunAnalytic) and on a model through the pipeline (RunModel), schedule searches
// (OptimizeAnalytic, OptimizeModel); end-point errors, trajectory straightness, distribution
// distances, convergence-order fits and budget tables; image metrics (PSNR, SSIM); labelled image and
// scatter grids, log–log plots, metrics.csv and report.md (Result). It may import pipeline and
// scheduler (DESIGN.md); scheduler stays free of it.
package compare
