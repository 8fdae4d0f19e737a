// Truncated power law p(x) ~ x^-alpha e^(-Lambda x), x >= xmin (fit='TPL' / 'E_TPL'): maximum likelihood
// of (alpha, Lambda) for every xmin candidate, xmin chosen by the KS distance of the fitted law — the
// procedure weightwatcher 0.7.7 runs through the `powerlaw` package (2.0), reproduced with our own code.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace htsr {

// Gamma(s, z) = integral_z^inf t^(s-1) e^-t dt for real s <= 1 (negative s allowed) and z > 0.
double upper_incomplete_gamma(double s, double z);

// One xmin: the bounded Nelder-Mead MLE (alpha in [0, 3], Lambda >= 0, the reference's start, simplex and
// tolerance 1e-4) and the fit's validity (parameters inside the box and at least 0.01 from its edges, and the
// optimizer converged).
struct TPLCandidate {
    double alpha = 0, Lambda = 0, neg_loglik = 0;
    bool valid = false;
    int evaluations = 0;
};

// x: the values >= xmin, ascending (x[0] = xmin).
TPLCandidate fit_tpl_at(const double* x, std::int64_t n);

struct TPLFit {
    bool ok = false;         // false: fewer than 2 xmin candidates
    std::string message;
    double alpha = -1, Lambda = -1, xmin = -1, D = -1;
    std::int64_t index = -1;          // of xmin in the data
    std::int64_t num_candidates = 0;
    bool any_valid = false;            // false: every candidate's fit was invalid, xmin chosen among all
};

// data: positive values ascending. Candidates are the distinct values v with lo <= v < hi, except the
// largest such one (as the `powerlaw` package, whose default range is [min, max): all distinct values but the
// two largest).
TPLFit fit_truncated_power_law(const std::vector<double>& data, double lo, double hi);

// Kolmogorov-Smirnov distance of the TPL (alpha, Lambda) fitted at data[i] against the tail data[i:],
// as the `powerlaw` package measures it (empirical CDF of the distinct values, k/n convention).
double tpl_ks_distance(const std::vector<double>& data, std::int64_t i, double alpha, double Lambda,
                       double prune_above);

}  // namespace htsr
