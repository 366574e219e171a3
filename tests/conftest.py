"""Settings shared by the unit tests in tests/.

Only the pytest processes that run these tests read this file; nbval executes every notebook in
a kernel of its own, which it does not touch.
"""

import torch

# The tests drive tiny networks on batches of a few observations. When the cores are shared (two
# xdist workers on a 2-core runner, notebooks executing beside the tests), torch with two
# intra-op threads took ~12 ms per softmax of a (4, 2) tensor, against ~1 us with one thread:
# this suite ran in 133 s with two threads and in 9 s with one on 2 busy cores. One thread per
# worker is also what xdist's one-worker-per-core layout wants.
torch.set_num_threads(1)
