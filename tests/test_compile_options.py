"""The CPU compile options of the attack programs: only where XLA knows them, same numbers."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudio.attacks import compile_options


def test_options_on_cpu_and_switch_off(monkeypatch):
    assert jax.default_backend() == "cpu"
    known = compile_options._accepted(tuple(sorted(compile_options.GRADIENT_OPTIONS.items())))
    # A later XLA may drop the option: then plain jax.jit, never a failed compile.
    expected = compile_options.GRADIENT_OPTIONS if known else None
    assert compile_options.gradient_options() == expected
    monkeypatch.setenv("JAXAUDIO_XLA_CPU_TUNING", "0")
    assert compile_options.gradient_options() is None


def test_an_option_the_compiler_lacks_is_left_out():
    assert not compile_options._accepted((("xla_cpu_no_such_option_anywhere", ""),))


def test_tuned_gradient_equals_the_default_one():
    # A small convolutional gradient, compiled with and without the options.
    rng = np.random.default_rng(0)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 8, 8)) / 8, jnp.float32)
    x = jnp.asarray(rng.normal(size=(2, 12, 10, 8)), jnp.float32)

    def loss(v):
        y = jax.lax.conv_general_dilated(v, kernel, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.sum(jax.nn.relu(y) ** 2)

    tuned = compile_options.jit_gradient(jax.value_and_grad(loss))(x)
    plain = jax.jit(jax.value_and_grad(loss))(x)
    np.testing.assert_allclose(np.asarray(tuned[0]), np.asarray(plain[0]), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(tuned[1]), np.asarray(plain[1]), rtol=1e-4, atol=1e-4)
