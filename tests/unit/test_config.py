"""Config loading: defaults, units, examples, and every kind of bad config (exit 78)."""

from __future__ import annotations

import ast
import dataclasses
import os
from collections import Counter
from pathlib import Path

import pytest

from motiond.cli import EX_CONFIG, main
from motiond.config import (
    CameraConfig,
    ConfigError,
    MotionConfig,
    RecordConfig,
    WebConfig,
    dump_effective_config,
    load_config,
    parse_config,
)
from motiond.config.fields import sections, spec_of
from motiond.units import format_duration, format_size, parse_duration, parse_size
from tests.fixtures import REPO
from tests.fixtures.daemon import clean_env, run_motiond, run_motiond_until

MINIMAL = "cameras:\n  - name: cam\n    source: demo\n"


def test_minimal_config_gets_the_defaults(tmp_path: Path) -> None:
    config = parse_config(MINIMAL, base=tmp_path)
    camera = config.cameras[0]
    assert camera.capture.kind == "demo"
    assert camera.motion == MotionConfig()
    assert camera.record == RecordConfig()
    assert config.web.listen == "127.0.0.1" and config.web.port == 8100
    assert config.storage.dir == Path("motiond-data")


def test_state_directory_is_the_default_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/motiond:/var/lib/other")
    assert parse_config(MINIMAL).storage.dir == Path("/var/lib/motiond")


def test_the_documented_default_config_shows_every_default() -> None:
    """motiond.yaml shows every key with its default: parsed, it equals the code's defaults."""
    config = load_config(REPO / "motiond.yaml")
    camera = config.cameras[0]
    defaults = CameraConfig(name="demo", capture=camera.capture)
    assert camera == defaults
    assert dataclasses.replace(camera.capture, source="demo") == camera.capture
    text = (REPO / "motiond.yaml").read_text()
    assert config.web == WebConfig()
    for section in (MotionConfig(), RecordConfig(), camera.capture, config.web, config.web.auth):
        for field in dataclasses.fields(section):
            if field.name not in ("kind", "device_index", "source"):
                assert f" {field.name}:" in text, f"motiond.yaml does not show {field.name}"


@pytest.mark.parametrize("path", sorted((REPO / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_are_valid(path: Path) -> None:
    assert load_config(path).cameras


@pytest.mark.parametrize(
    ("source", "kind", "location"),
    [
        (0, "v4l2", "/dev/video0"),
        ("2", "v4l2", "/dev/video2"),
        ("/dev/v4l/by-id/usb-cam-video-index0", "v4l2", "/dev/v4l/by-id/usb-cam-video-index0"),
        ("rtsp://u:p@10.0.0.5/stream", "url", "rtsp://u:p@10.0.0.5/stream"),
        ("http://cam.local/video.mjpg", "url", "http://cam.local/video.mjpg"),
        ("demo", "demo", "demo"),
    ],
)
def test_source_kinds(source: object, kind: str, location: str) -> None:
    text = (
        f"cameras:\n  - name: cam\n    source: {source!r}\n"
        if isinstance(source, str)
        else f"cameras:\n  - name: cam\n    source: {source}\n"
    )
    capture = parse_config(text).cameras[0].capture
    assert (capture.kind, capture.source) == (kind, location)


def test_file_source_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "clip.avi").write_bytes(b"x")
    capture = (
        parse_config("cameras:\n  - name: c\n    source: clip.avi\n", base=tmp_path)
        .cameras[0]
        .capture
    )
    assert capture.kind == "file" and capture.source == str(tmp_path / "clip.avi")


def test_units_in_config() -> None:
    text = (
        MINIMAL + "    record: {pre_roll: 1500ms, max_clip: 2m}\n    capture: {read_timeout: 3}\n"
    )
    camera = parse_config(text).cameras[0]
    assert camera.record.pre_roll == 1.5 and camera.record.max_clip == 120.0
    assert camera.capture.read_timeout == 3.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2s", 2.0),
        ("500ms", 0.5),
        ("10m", 600.0),
        ("1.5h", 5400.0),
        ("7d", 604800.0),
        (3, 3.0),
        ("4", 4.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("20GB", 20 * 10**9),
        ("512MiB", 512 * 2**20),
        ("100kb", 100_000),
        (42, 42),
        ("1.5GB", 1_500_000_000),
    ],
)
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["2 parsecs", "-1s", "", True, "s"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_formatting_round_trips() -> None:
    for seconds in (0.5, 2.0, 600.0, 3600.0, 86400.0, 1.25):
        assert parse_duration(format_duration(seconds)) == seconds
    for size in (20 * 10**9, 512 * 2**20, 1234):
        assert parse_size(format_size(size)) == size


# --- bad configs: one line naming the file, the key path and the reason; exit 78 ------------

BAD_CONFIGS = [
    ("cameras: [\n  - name: x", "", "YAML syntax error: line"),
    (
        "cameras:\n  - name: cam\n    source: demo\n    colour: red\n",
        "cameras[0].colour",
        "unknown key",
    ),
    ("storage: {dri: /tmp}\n" + MINIMAL, "storage.dri", "unknown key"),
    (
        MINIMAL + "    motion: {pixel_threshold: 300}\n",
        "cameras[0].motion.pixel_threshold",
        "must be 1..255, got 300",
    ),
    (
        MINIMAL + "    motion: {threshold: high}\n",
        "cameras[0].motion.threshold",
        "must be a number",
    ),
    (
        MINIMAL + "    motion: {stable_frames: 2.5}\n",
        "cameras[0].motion.stable_frames",
        "whole number",
    ),
    (
        MINIMAL + "    record: {pre_roll: 2 parsecs}\n",
        "cameras[0].record.pre_roll",
        "expected a duration",
    ),
    (
        MINIMAL + "    record: {codec: hevc}\n",
        "cameras[0].record.codec",
        "must be one of h264, vp9",
    ),
    (
        MINIMAL + "    motion: {masks: [[[0, 0], [1, 1]]]}\n",
        "cameras[0].motion.masks[0]",
        "at least 3",
    ),
    (
        MINIMAL + "    motion: {lightswitch: 0.001}\n",
        "cameras[0].motion.lightswitch",
        "above threshold",
    ),
    (
        MINIMAL + "    motion: {min_area: 2}\n",
        "cameras[0].motion.min_area",
        "must be 0..1, got 2",
    ),
    (
        MINIMAL + "    motion: {nuisance: sometimes}\n",
        "cameras[0].motion.nuisance",
        "must be true or false",
    ),
    (
        MINIMAL + "    motion: {nuisance_learning: 2s}\n",
        "cameras[0].motion.nuisance_learning",
        "must be 10s..1h, got 2s",
    ),
    (
        MINIMAL + "    motion: {tamper_after: 500ms}\n",
        "cameras[0].motion.tamper_after",
        "must be 0 (off) or at least 1s",
    ),
    (
        MINIMAL + "    motion: {night: {pixel_threshold: 300}}\n",
        "cameras[0].motion.night.pixel_threshold",
        "must be 1..255, got 300",
    ),
    (
        MINIMAL + "    motion: {night: {blur: 7}}\n",
        "cameras[0].motion.night.blur",
        "unknown key",
    ),
    (
        MINIMAL + "    motion: {night: {threshold: 0.5}}\n",
        "cameras[0].motion.night.lightswitch",
        "above threshold",
    ),
    (
        MINIMAL + "    hooks: {on_camera_tampered: {}}\n",
        "cameras[0].hooks.on_camera_tampered",
        "needs a command, a url, or both",
    ),
    (MINIMAL + "    capture: {width: 640}\n", "cameras[0].capture.width", "set both or neither"),
    (
        "cameras:\n  - name: cam\n    source: ftp://cam.local/x\n",
        "cameras[0].source",
        "unknown source scheme ftp://",
    ),
    (
        "cameras:\n  - name: cam\n    source: /nowhere/clip.mp4\n",
        "cameras[0].source",
        "video file not found",
    ),
    ("cameras:\n  - name: cam\n", "cameras[0].source", "required"),
    ("cameras:\n  - name: a b\n    source: demo\n", "cameras[0].name", "letters, digits"),
    (MINIMAL + "  - name: cam\n    source: demo\n", "cameras[1].name", "duplicate camera name"),
    ("web: {port: 70000}\n" + MINIMAL, "web.port", "must be 0..65535"),
    ("log_level: loud\n" + MINIMAL, "log_level", "must be one of"),
    ("cameras: []\n", "cameras", "at least one camera"),
    ("- just\n- a list\n", "", "must be a mapping"),
    ("hooks: {on_clip_end: {}}\n" + MINIMAL, "hooks.on_clip_end", "needs a command, a url"),
    ("hooks: {on_clip_end: {url: 'ftp://x'}}\n" + MINIMAL, "hooks.on_clip_end.url", "http"),
    (
        "web: {trusted_proxies: [10.0.0.0/33]}\n" + MINIMAL,
        "web.trusted_proxies[0]",
        "must be an IP address or a network",
    ),
    (
        "web: {tls_cert: /etc/passwd, tls_key: /etc/passwd}\n" + MINIMAL,
        "web.tls_cert",
        "cannot load /etc/passwd",
    ),
    (
        "mqtt: {host: 127.0.0.1, tls: {ca_file: /etc/passwd}}\n" + MINIMAL,
        "mqtt.tls.ca_file",
        "cannot load /etc/passwd",
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "reason"), BAD_CONFIGS, ids=[c[1] or c[2] for c in BAD_CONFIGS]
)
def test_bad_config_names_file_key_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, reason: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        f"storage: {{dir: {tmp_path / 'data'}}}\n" + text
        if "storage" not in text and text.startswith(("cameras", "log", "web", "hooks"))
        else text
    )
    os.chdir(tmp_path)
    assert main(["run", "-c", str(path)]) == EX_CONFIG
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"motiond: config error: {path}: ")
    if key:
        assert f": {key}: " in message, message
    assert reason in message, message
    assert not (tmp_path / "data").exists() and not (tmp_path / "motiond-data").exists()


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "-c", str(tmp_path / "nope.yaml")]) == EX_CONFIG
    assert "nope.yaml: config file not found" in capsys.readouterr().err


def test_unreadable_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "-c", str(tmp_path)]) == EX_CONFIG  # a directory
    assert "cannot read config file" in capsys.readouterr().err


def test_storage_under_a_file_is_not_writable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = tmp_path / "c.yaml"
    path.write_text(f"storage: {{dir: {blocker / 'data'}}}\n" + MINIMAL)
    assert main(["run", "-c", str(path)]) == EX_CONFIG
    assert ": storage.dir: " in capsys.readouterr().err


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root can write anywhere; checked through a file above"
)
def test_storage_dir_without_permission(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    path = tmp_path / "c.yaml"
    path.write_text(f"storage: {{dir: {locked / 'data'}}}\n" + MINIMAL)
    assert main(["run", "-c", str(path)]) == EX_CONFIG
    assert "storage.dir" in capsys.readouterr().err


def test_the_real_command_exits_78_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL + "    motion: {pixel_threshold: 300}\n")
    result = run_motiond(["run", "-c", str(path)], cwd=tmp_path, env=clean_env())
    assert result.returncode == 78
    assert result.stderr.strip() == (
        f"motiond: config error: {path}: cameras[0].motion.pixel_threshold: must be 1..255, got 300"
    )
    assert list(tmp_path.iterdir()) == [path]


def test_check_config_prints_the_effective_config(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(MINIMAL + "    record: {pre_roll: 1500ms}\n")
    result = run_motiond(["check-config", "-c", str(path)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pre_roll: 1500ms" in result.stdout
    assert "pixel_threshold: 20" in result.stdout
    assert parse_config(result.stdout).cameras[0].record.pre_roll == 1.5


def test_trusted_proxy_networks_pass_check_config_and_run(tmp_path: Path) -> None:
    """What check-config accepts, run starts with (a CIDR made run crash with exit 1)."""
    path = tmp_path / "c.yaml"
    path.write_text(
        f"storage: {{dir: {tmp_path / 'data'}}}\n"
        "web: {port: 0, trusted_proxies: [10.0.0.0/8, 192.168.1.7, 'fd00::/8']}\n" + MINIMAL
    )
    checked = run_motiond(["check-config", "-c", str(path)], cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "- 10.0.0.0/8" in checked.stdout
    code, log = run_motiond_until(["run", "-c", str(path)], tmp_path, "web: listening")
    assert code == 0, log
    assert "Traceback" not in log


def test_version() -> None:
    from motiond import __version__

    result = run_motiond(["--version"], cwd=REPO)
    assert result.returncode == 0 and result.stdout.strip() == f"motiond {__version__}"


def test_without_config_runs_the_embedded_demo(tmp_path: Path) -> None:
    result = run_motiond(["check-config"], cwd=tmp_path)
    assert result.returncode == 0
    assert "embedded demo" in result.stdout and "source: demo" in result.stdout


def test_config_error_is_an_exception_not_an_exit() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("cameras: 3", source_path="x.yaml")
    assert str(caught.value) == "x.yaml: cameras: required: a list with at least one camera"


def test_nuisance_night_and_tamper_keys() -> None:
    config = parse_config(
        MINIMAL
        + "    motion:\n"
        + "      min_area: 0.002\n"
        + "      nuisance: false\n"
        + "      nuisance_learning: 5m\n"
        + "      tamper_after: 0\n"
        + "      night: {pixel_threshold: 30, threshold: 0.005}\n"
        + "    hooks: {on_camera_tampered: {url: 'http://127.0.0.1:9/x'}}\n"
    )
    (camera,) = config.cameras
    motion = camera.motion
    assert (motion.min_area, motion.nuisance, motion.nuisance_learning) == (0.002, False, 300.0)
    assert motion.tamper_after == 0.0
    night = motion.at_night()
    assert (night.pixel_threshold, night.threshold, night.min_area) == (30, 0.005, 0.002)
    assert motion.pixel_threshold == 20  # by day, the day's values
    assert MotionConfig().at_night() == MotionConfig()
    hook = camera.hooks.for_event("on_camera_tampered")
    assert hook is not None and hook.url == "http://127.0.0.1:9/x"
    printed = dump_effective_config(config)
    assert "nuisance_learning: 5m" in printed and "tamper_after: 0ms" in printed


# --- each key declared once ----------------------------------------------------------------


def key_spellings(source: str) -> Counter[str]:
    """Names that Python ``source`` spells as keys: keyword arguments (``MotionConfig(blur=3)``)
    and string literals (``get("blur")``, ``Invalid("blur", ...)``, ``"blur" in given``), but
    not strings that are values: compared with ``==``/``!=``, ``Literal[...]`` arguments, or a
    keyword argument's value. Attribute access (``motion.blur``) is using a key, not spelling
    it."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def is_a_value(node: ast.AST) -> bool:
        parent = parents.get(node)
        if isinstance(parent, ast.keyword):
            return True
        if isinstance(parent, ast.Compare):
            return node is not parent.left or not isinstance(parent.ops[0], ast.In | ast.NotIn)
        while parent is not None:
            if isinstance(parent, ast.Subscript) and ast.unparse(parent.value) == "Literal":
                return True
            parent = parents.get(parent)
        return False

    spelled: Counter[str] = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg:
            spelled[node.arg] += 1
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and not is_a_value(node)
        ):
            spelled[node.value] += 1
    return spelled


def test_key_spellings_counts_keys_not_values() -> None:
    old_style = (
        'blur = section.integer("blur", defaults.blur, 0, 31)\n'
        "motion = MotionConfig(blur=blur)\n"
        'fields = frozenset({"warmup", "blur"})\n'
        'if kind != "url" and "url" in given: pass\n'
        'Kind = Literal["url", "file"]\n'
        'found = Several(kind="url")\n'
    )
    assert key_spellings(old_style) == {
        "blur": 3,
        "warmup": 1,
        "url": 1,
        "kind": 1,
    }


def test_each_config_key_is_declared_once_and_named_at_most_once_more() -> None:
    """A key's type, default and bounds are its dataclass field; beside that, its name appears
    at most once more in motiond/config/ (a rule that names it), per section declaring it."""
    declared: Counter[str] = Counter(
        field.name
        for cls in sections()
        for field in dataclasses.fields(cls)
        if not spec_of(field).derived
    )
    assert {"pixel_threshold", "source", "keepalive", "log_level"} <= set(declared)
    spelled: Counter[str] = Counter()
    for path in sorted((REPO / "motiond" / "config").glob("*.py")):
        spelled += key_spellings(path.read_text())
    too_often = {name: spelled[name] for name in declared if spelled[name] > declared[name]}
    assert not too_often, f"keys named more than once beside their declaration: {too_often}"
