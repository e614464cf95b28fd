"""What this CPU can run, for the tests whose subject is hardware-dependent. CI runs on
whichever machine it gets: some have bfloat16 units (AVX512_BF16 or AMX), some (AVX2-only
EPYCs) do not, and OpenVINO then offers FP32 and INT8 only. Such a test checks what the
hardware allows (where bf16 cannot run, that it is refused), and then skips only with a reason
naming the missing unit."""
from face_alignment.backends import openvino_net


def _has_bf16_units() -> bool:
    return openvino_net.BF16_CAPABILITY in openvino_net.cpu_capabilities(openvino_net.openvino_core())


BF16_UNITS = _has_bf16_units()
NO_BF16_REASON = "this CPU has no bfloat16 units (AVX512_BF16 or AMX): OpenVINO cannot run bf16 here"
