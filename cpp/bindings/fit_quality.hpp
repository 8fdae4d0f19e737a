// Bindings of the fit-quality statistics (goodness of fit, compare_fits, FARMS, verdicts): the functions
// module.cpp registers and the two hooks its analyze_layers uses for the fit_quality={...} argument.
#pragma once
#include <pybind11/pybind11.h>

#include "htsr/backend.hpp"

// Registers goodness_of_fit, compare_fits, compare_tail, farms_windows and interval_warning on the module.
void bind_fit_quality(pybind11::module_& m);

// analyze_layers(fit_quality={...}) into options: keys gof (bool), gof_resamples (int, default 1000),
// compare_fits (bool), farms (bool), farms_aspect (float, 1.0), farms_overlap (float, 0.5) and
// alpha_ci_method ('tail' | 'full'); None leaves everything off. seed: analyze_layers' seed (None: fresh).
void apply_fit_quality_options(htsr::AnalysisOptions& options, const pybind11::object& fit_quality,
                               const pybind11::object& seed);

// The result keys of what options asked for: pl_pvalue, gof_fitted (gof); R_<alt>, p_<alt> (compare_fits);
// fit_quality (either test); alpha_farms, farms_submatrices (farms); warning_ci (alpha_ci); quality_message
// (why a statistic is missing, '' when none is).
void put_fit_quality_columns(pybind11::dict& d, const htsr::LayerAnalysis& a, const htsr::AnalysisOptions& options);
