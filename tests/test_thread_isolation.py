"""No test hands its thread counts to the next (tests/conftest.py keep_thread_counts; issue 11, item 13): the
counts are process-wide and move the last bits of eigenvalues, so a leak made results depend on test order.
The two tests run in file order: the first changes every count, the second sees them put back."""
import pytest

import htsr

torch = pytest.importorskip("torch")
SEEN = {}


@pytest.mark.filterwarnings("ignore:.*changed thread counts")  # expected here: the guard puts them back
def test_changes_thread_counts(blas_pools, current_thread_counts):
    SEEN.update(current_thread_counts())
    torch.set_num_threads(SEEN["torch"] + 1)
    htsr.core.set_num_threads(SEEN["htsr"] + 2)
    for lib in blas_pools:
        lib.set_num_threads(SEEN[lib.filepath] + 1)


def test_finds_them_put_back(blas_pools, current_thread_counts):
    if not SEEN:
        pytest.skip("runs after test_changes_thread_counts")
    assert len(blas_pools) >= 2  # numpy's and htsr's OpenBLAS at least
    assert current_thread_counts() == SEEN
