// Truncated power law p(x) ~ x^-alpha e^(-Lambda x), x >= xmin (fit='TPL' / 'E_TPL'): maximum likelihood
// of (alpha, Lambda) for every xmin candidate, xmin chosen by the KS distance of the fitted law — the
// procedure weightwatcher 0.7.7 runs through the `powerlaw` package, reproduced with our own code.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace htsr {

// Gamma(s, z) = integral_z^inf t^(s-1) e^-t dt for real s <= 1 (negative s allowed) and z > 0.
double upper_incomplete_gamma(double s, double z);

// Whose rules the fit follows. weightwatcher 0.7.7 produces TPL rows only with `powerlaw` 1.x (it passes
// powerlaw.Fit a keyword that 2.0 rejects), so Powerlaw1 is what htsr's analyze uses; Powerlaw2 reproduces
// the `powerlaw` 2.0 package called directly.
//   Powerlaw1: alpha > 1, Lambda > 0 (no upper bound), unbounded Nelder-Mead (scipy `fmin`), a fit is valid
//              when its parameters are in that range; xmin candidates lo <= v <= hi.
//   Powerlaw2: alpha in (0, 3), Lambda > 0, Nelder-Mead bounded to that box, valid when inside it, at least
//              0.01 from its edges and converged; xmin candidates lo <= v < hi.
// Both drop the largest candidate and take the same start, simplex, tolerance (1e-4) and KS distance.
enum class TPLRules { Powerlaw1, Powerlaw2 };

// One xmin: the Nelder-Mead MLE of (alpha, Lambda) and the fit's validity under `rules`.
struct TPLCandidate {
    double alpha = 0, Lambda = 0, neg_loglik = 0;
    bool valid = false;
    int evaluations = 0;
};

// x: the values >= xmin, ascending (x[0] = xmin).
TPLCandidate fit_tpl_at(const double* x, std::int64_t n, TPLRules rules);

struct TPLFit {
    bool ok = false;         // false: fewer than 2 xmin candidates
    std::string message;
    double alpha = -1, Lambda = -1, xmin = -1, D = -1;
    std::int64_t index = -1;          // of xmin in the data
    std::int64_t num_candidates = 0;
    bool any_valid = false;            // false: every candidate's fit was invalid, xmin chosen among all
};

// data: positive values ascending. Candidates are the distinct values in the rules' range from lo to hi,
// except the largest such one (as the `powerlaw` package; its default range, lo = min and hi = max, leaves out
// the largest distinct value under Powerlaw1 and the two largest under Powerlaw2).
TPLFit fit_truncated_power_law(const std::vector<double>& data, double lo, double hi, TPLRules rules);

// Kolmogorov-Smirnov distance of the TPL (alpha, Lambda) fitted at data[i] against the tail data[i:],
// as the `powerlaw` package measures it (empirical CDF of the distinct values, k/n convention).
double tpl_ks_distance(const std::vector<double>& data, std::int64_t i, double alpha, double Lambda, TPLRules rules,
                       double prune_above);

}  // namespace htsr
