// Power-law fit of an ESD tail by maximum likelihood over every xmin candidate (spec §3).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace htsr {

// How the small-N variant (fewer than 20 values, spec §3.2) picks xmin.
// penalized: smallest J = D - 0.868/sqrt(n) (the spec). ks: smallest D among the small-N candidates,
// which is what weightwatcher 0.7.7 returns (it discards its own J choice); used by the facade.
enum class SmallNSelect { Penalized, KS };

struct PowerLawOptions {
    int xmax_clip = 0;                 // drop this many of the largest eigenvalues first (spec `xmax=k`)
    double evals_thresh = 1e-5;        // EVALS_THRESH: only values above it are fitted
    SmallNSelect small_n = SmallNSelect::Penalized;
    bool keep_candidates = false;      // also return per-candidate xmins, alphas and Ds
};

struct PowerLawFit {
    std::string status = "failed";     // "success" | "failed"
    std::string warning;               // "over-trained" (alpha<2) | "under-trained" (alpha>6) | ""
    std::string message;               // why the fit failed, when it did
    double alpha = -1, xmin = -1, xmax = -1, D = -1, sigma = -1;
    long long num_pl_spikes = -1;      // #eigenvalues >= xmin, over all the layer's eigenvalues
    long long n_fitted = 0;            // values above evals_thresh that entered the fit
    std::vector<double> xmins, alphas, Ds;  // per candidate, when keep_candidates
};

// evals: the layer's eigenvalues sorted ascending.
PowerLawFit fit_power_law(const std::vector<double>& evals, const PowerLawOptions& options);

}  // namespace htsr
