"""A peer that dies is one line from the survivor, wherever it notices (trainer.distributed): in the
collectives `Dist` wraps, and in DDP's gradient all-reduce inside backward(), which it does not."""
import pytest
import torch.distributed as dist

from trainer.distributed import Dist, DistributedError, peer_failures_reported

# what gloo raised in backward() when the other process was killed (torch 2.13, CPU)
GLOO_RESET = ("[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:11679: "
              "Connection reset by peer. This is typically caused by a remote worker hanging or bugs in the application.")
TWO = Dist(rank=0, local_rank=0, world=2)


@pytest.mark.parametrize("error", [RuntimeError(GLOO_RESET), dist.DistBackendError("NCCL error: remote process exited")],
                         ids=["gloo", "nccl"])
def test_a_failed_collective_anywhere_in_the_run_is_a_one_line_distributed_error(error):
    with pytest.raises(DistributedError) as caught:
        with peer_failures_reported(TWO):
            raise error
    message = str(caught.value)
    assert message.startswith("another process of the distributed run stopped or is unreachable (")
    assert "\n" not in message and len(message) < 240
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_other_errors_pass_through_and_a_single_process_run_is_untouched():
    with pytest.raises(RuntimeError, match="^mat1 and mat2 shapes cannot be multiplied$"):
        with peer_failures_reported(TWO):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
    with pytest.raises(RuntimeError, match="gloo"):  # no peers: nothing to blame on them
        with peer_failures_reported(Dist()):
            raise RuntimeError(GLOO_RESET)
