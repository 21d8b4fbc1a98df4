"""kustomize's errors as a user sees them: no klog prefixes, helm and remote bases told apart."""

from __future__ import annotations

from conveyor.errors import RenderUnavailableError
from conveyor.gitops.render_error import clean, render_failure

KLOG_ONE_LINE = (
    'E1202 03:39:32.347391   11040 run.go:72] "command failed" '
    'err="accumulating resources: \\"missing.yaml\\": no such file or directory"\n'
)
KLOG_MULTI_LINE = (
    'E1202 03:43:42.952407   19070 run.go:72] "command failed" err=<\n'
    "\taccumulating resources: accumulation err='accumulating resources from "
    "'https://github.com/x/y//k?ref=v1': Get \"https://github.com/x/y//k?ref=v1\": dial tcp: "
    "lookup github.com: no such host'\n"
    "\t: exit status 128\n"
    " >\n"
)
HELM = (
    'E1202 04:00:00.000000   1 run.go:72] "command failed" err="trouble configuring builtin '
    'HelmChartInflationGenerator with config: `name: web`: must specify --enable-helm"\n'
)


def test_klog_prefixes_and_the_command_failed_wrapper_are_removed() -> None:
    assert (
        clean(KLOG_ONE_LINE) == 'accumulating resources: "missing.yaml": no such file or directory'
    )
    assert clean(KLOG_MULTI_LINE) == (
        "accumulating resources: accumulation err='accumulating resources from "
        "'https://github.com/x/y//k?ref=v1': Get \"https://github.com/x/y//k?ref=v1\": dial tcp: "
        "lookup github.com: no such host' : exit status 128"
    )
    # kustomize's own binary: "Error: " and its usage text after it
    assert clean('Error: invalid Kustomization: json: unknown field "x"\nUsage:\n  kustomize') == (
        'invalid Kustomization: json: unknown field "x"'
    )


def test_helm_not_enabled_says_how_to_pass_it_in_conveyor() -> None:
    error = render_failure("apps/web", HELM, 1)
    assert isinstance(error, RenderUnavailableError)
    assert error.reason == "helm charts (--enable-helm is off)"
    assert str(error) == (
        "apps/web: uses helmCharts, which kustomize renders only with --enable-helm\n"
        "  hint: helmCharts need helm: pass --enable-helm (conveyor manifest set-image, conveyor "
        "policy check) or set gitops.environments.<env>.enable_helm = true, with helm on PATH"
    )


def test_a_remote_base_offline_cannot_be_rendered_here_and_a_broken_file_is_an_error() -> None:
    remote = render_failure("o", KLOG_MULTI_LINE, 1)
    assert isinstance(remote, RenderUnavailableError)
    assert remote.reason == "a remote base or resource"
    broken = render_failure("o", KLOG_ONE_LINE, 1)
    assert not isinstance(broken, RenderUnavailableError)
    assert broken.problem.startswith("kustomize could not build it: accumulating resources")
    assert render_failure("o", "", 3).problem == "kustomize could not build it: exit 3"
