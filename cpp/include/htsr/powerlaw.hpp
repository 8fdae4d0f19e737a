// Power-law fit of an ESD tail by maximum likelihood over every xmin candidate (spec §3).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "htsr/tpl.hpp"

namespace htsr {

// How the small-N variant (fewer than 20 values, spec §3.2) picks xmin.
// penalized: smallest J = D - 0.868/sqrt(n) (the spec). ks: smallest D among the small-N candidates,
// which is what weightwatcher 0.7.7 returns (it discards its own J choice); used by the facade.
enum class SmallNSelect { Penalized, KS };

// fit='PL' (power law, the default) or 'TPL' (truncated power law, see tpl.hpp).
enum class TailDistribution { PowerLaw, TruncatedPowerLaw };

// fix_fingers: None; XminPeak: xmin only from [log10(0.95 p), xmin_max) with p the left edge of the fullest of
// 100 log10-histogram bins (the reference's lower bound is the log10 of 0.95 p, kept for compatibility);
// ClipXmax: refit with the 2..max_fingers-1 largest values removed until alpha drops by more than
// finger_thresh below the unclipped alpha (num_fingers = removed - 1), stopping early at alpha <= 2.
enum class FixFingers { None, XminPeak, ClipXmax };

struct PowerLawOptions {
    int xmax_clip = 0;                 // drop this many of the largest eigenvalues first (spec `xmax=k`)
    double evals_thresh = 1e-5;        // EVALS_THRESH: only values above it are fitted
    SmallNSelect small_n = SmallNSelect::Penalized;
    bool keep_candidates = false;      // also return per-candidate xmins, alphas and Ds
    TailDistribution distribution = TailDistribution::PowerLaw;
    FixFingers fix_fingers = FixFingers::None;
    double xmin_max = 0.0;             // XminPeak upper bound; <= 0: 1.5 x the histogram peak
    int max_fingers = 10;              // ClipXmax: clip at most max_fingers - 1 values
    TPLRules tpl_rules = TPLRules::Powerlaw1;  // TruncatedPowerLaw: whose rules (tpl.hpp)
    double finger_thresh = 1.0;        // ClipXmax: alpha drop that marks the fingers
};

struct PowerLawFit {
    std::string status = "failed";     // "success" | "failed"
    std::string warning;               // success: "over-trained" (alpha<2) | "under-trained" (alpha>6) | ""; failed: ""
    std::string message;               // why the fit failed, when it did
    double alpha = -1, xmin = -1, xmax = -1, D = -1, sigma = -1;
    long long num_pl_spikes = -1;      // #eigenvalues >= xmin, over all the layer's eigenvalues
    long long n_fitted = 0;            // values above evals_thresh that entered the fit
    std::vector<double> xmins, alphas, Ds;  // per candidate, when keep_candidates
    double Lambda = -1;                // truncated power law: the exponential cut-off rate
    long long num_fingers = 0;         // ClipXmax: largest values clipped off (0: none)
    double raw_alpha = -1;             // ClipXmax: alpha before clipping
};

// Throws std::invalid_argument naming the option when options cannot be fitted with (max_fingers < 1,
// clip_xmax with the truncated power law). fit_power_law itself fails such a fit instead of throwing.
void check_power_law_options(const PowerLawOptions& options);

// evals: the layer's eigenvalues sorted ascending. Dispatches on distribution and fix_fingers.
PowerLawFit fit_power_law(const std::vector<double>& evals, const PowerLawOptions& options);

// The power-law fit alone (distribution and fix_fingers ignored), xmin restricted to [xmin_lo, xmin_hi).
PowerLawFit fit_plain_power_law(const std::vector<double>& evals, const PowerLawOptions& options, double xmin_lo,
                                double xmin_hi);

// fix_fingers='xmin_peak': the xmin range [lo, hi) from the values above evals_thresh (ascending).
struct XminRange {
    double lo, hi;
};
XminRange xmin_peak_range(const std::vector<double>& values, double xmin_max);

}  // namespace htsr
