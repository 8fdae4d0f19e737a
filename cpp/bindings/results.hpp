// Core results into the dicts htsr._core returns. Every key comes from one table (results.cpp): its name, the
// group of results it belongs to and how to read it, so a new column is one line there.
#pragma once
#include <pybind11/pybind11.h>

#include "htsr/analysis.hpp"

namespace htsr::bindings {

namespace py = pybind11;

// Groups of keys; a call returns the keys of the groups it asks for, in table order.
enum ResultGroup : unsigned {
    kSpectrum = 1u << 0,            // error, N, M, ..., on_cpu_fallback
    kEvals = 1u << 1,               // evals
    kFit = 1u << 2,                 // alpha, xmin, ..., raw_alpha (+ xmins, alphas, Ds when candidates were kept)
    kFitSummary = 1u << 3,          // alpha, xmin, D, status, fit_message (the single-ESD statistics' fit)
    kMetrics = 1u << 4,             // norm, ..., weak_rank_loss
    kMarchenkoPastur = 1u << 5,     // num_spikes, sigma_mp, ..., mp_message
    kMarchenkoPasturFit = 1u << 6,  // status, cutoff (fit_marchenko_pastur)
    kMarchenkoPasturGrid = 1u << 7, // grid, objective (fit_marchenko_pastur(keep_grid=True))
    kAlphaInterval = 1u << 8,       // alpha_ci_lo, alpha_ci_hi, alpha_ci_fitted
    kRandomized = 1u << 9,          // max_rand_eval, ..., rand_*, num_traps
    kRandomizedEvals = 1u << 10,    // rand_evals
    kGoodness = 1u << 11,           // pl_pvalue, gof_fitted
    kGoodnessMessage = 1u << 12,    // gof_message (goodness_of_fit)
    kComparison = 1u << 13,         // R_<alternative>, p_<alternative>
    kComparisonDetails = 1u << 14,  // parameters_<alternative>, converged_<alternative>, compared_alpha, compare_message
    kFitQuality = 1u << 15,         // fit_quality (the verdict of the tests that ran)
    kFarms = 1u << 16,              // alpha_farms, farms_submatrices
    kIntervalWarning = 1u << 17,    // warning_ci
    kQualityMessage = 1u << 18,     // quality_message (which of the requested statistics are missing, and why)
};
using ResultGroups = unsigned;

// The keys of `groups` (whose values it may move out of `a`) as a new dict.
py::dict result_dict(LayerAnalysis& a, ResultGroups groups);

// The groups analyze_layers returns for a layer under these options (a failed layer: its spectrum keys only).
ResultGroups analysis_groups(const LayerAnalysis& a, const AnalysisOptions& options, bool return_evals);

}  // namespace htsr::bindings
