"""The attack core, by name: re-exports of the modules it is split into.

* :mod:`jaxaudio.attacks.containers` — result, spec, config and loop-carry types;
* :mod:`jaxaudio.attacks.pieces` — decisions, optimisers, projections, starts, 16-bit grid, SNR;
* :mod:`jaxaudio.attacks.loop` — the per-example step and the plain / refilled-queue programs;
* :mod:`jaxaudio.attacks.driver` — the one driver (device or host loop) and the compile cache;
* :mod:`jaxaudio.attacks.validation` — keys, targets and checks of concrete inputs;
* :mod:`jaxaudio.attacks.specs` — one factory per attack (its hyperparameters).
"""

from jaxaudio.attacks.containers import (AttackConfig, AttackResult, AttackSpec, Decision, Goal,
                                         LoopState, QueueState, SweepResult)
from jaxaudio.attacks.driver import (LOOP_MODES, HostLoop, as_hyper, attack_queue,
                                     clear_cache, compile_attack, default_loop, drive,
                                     run_on_device)
from jaxaudio.attacks.loop import (Loop, finalize, init_state, plain_loop, queue_active,
                                   queue_body, queue_finish, queue_init, queue_loop, running,
                                   step, useful_steps)
from jaxaudio.attacks.pieces import (l2_projection, linf_projection, make_decision, materialize,
                                     quantize_16bit, round_to_16bit, sign_gradient, signed_adam,
                                     snr_db, snr_db_example, snr_l2_projection, uniform_l2_start,
                                     uniform_start, zero_start)
from jaxaudio.attacks.validation import (PreparedInputs, check_max_iterations, check_positive,
                                         check_slots, example_keys, num_classes, prepare_inputs,
                                         random_targets)
from jaxaudio.data.audio import PCM16_MAX_INDEX, PCM16_MIN_INDEX, PCM16_SCALE

__all__ = [
    "PCM16_SCALE", "PCM16_MIN_INDEX", "PCM16_MAX_INDEX",
    "AttackResult", "SweepResult", "Goal", "Decision", "AttackSpec", "AttackConfig", "LoopState",
    "QueueState", "make_decision", "sign_gradient", "signed_adam", "linf_projection",
    "l2_projection", "snr_l2_projection", "zero_start", "uniform_start", "uniform_l2_start",
    "materialize", "quantize_16bit", "round_to_16bit", "snr_db", "snr_db_example", "Loop",
    "running", "init_state", "step", "finalize", "plain_loop", "queue_loop", "queue_init",
    "queue_body", "queue_active", "queue_finish", "attack_queue", "useful_steps", "LOOP_MODES",
    "default_loop", "run_on_device", "HostLoop", "drive", "as_hyper", "compile_attack",
    "clear_cache",
    "example_keys", "random_targets", "num_classes", "PreparedInputs", "prepare_inputs",
    "check_positive", "check_max_iterations", "check_slots",
]
