"""`--record-sequence` and `.seq.nrrd` replay, through the real `sonomap` command.

A pyigtl server on loopback stands in for PLUS (real BUSI frames + a ProbeToTracker transform);
`sonomap live` records the session; `sonomap replay` of the recording must give the very frames
(bit-exact), timestamps and transforms back, and send over OpenIGTLink what the live session sent.
Also: a write error mid-session (a real file-size limit, EFBIG) stops only the recorder; a truncated
or corrupt recording is a one-line error naming the file (and the frame); SimpleITK (ITK's NRRD
reader, which 3D Slicer reads sequences with) reads the files with their geometry and fields; PLUS
MetaImage sequences (.igs.mha, plain and zlib-compressed, as PLUS writes them) replay too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from cli import sonomap
from file_size_limit import small_disk
from loopback import SONOMAP
from test_igtl_pipeline import DEVICE, build_dark_tissue_onnx, free_port, streamed_images
from test_igtl_standin import PROBE_TO_TRACKER, SPACING_MM, PlusStandIn, image_matrix, pyigtl

from edge_runtime.errors import InputError, SonomapError
from edge_runtime.sinks import sequence_layout as layout
from edge_runtime.sources.opener import open_source
from edge_runtime.sources.sequence import SequenceSource

nrrd = pytest.importorskip("nrrd")
LIVE_SECONDS = 3.0
POLL_S = 0.01
PROC_TIMEOUT_S = 40
LABELMAP, TRANSFORM = "Prediction_Reference", "Pred_ProbeToTracker"
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return build_dark_tissue_onnx(tmp_path_factory.mktemp("seq-model"))


def collect(viewer, proc: subprocess.Popen) -> dict[float, dict]:
    """timestamp -> {labelmap, transform} the viewer got while ``proc`` ran (newest per device)."""
    got: dict[float, dict] = {}
    while proc.poll() is None:
        for device, key in ((LABELMAP, "labelmap"), (TRANSFORM, "transform")):
            msg = viewer.wait_for_message(device, timeout=POLL_S)
            if msg is not None:
                value = msg.image[0] if key == "labelmap" else msg.matrix
                got.setdefault(msg.timestamp, {})[key] = np.array(value)
    return got


def run_with_viewer(args: list, port: int, gather=collect) -> tuple[subprocess.CompletedProcess, Any]:
    """Run ``sonomap ARGS --igtl-serve PORT`` with a pyigtl viewer connected; (the finished process,
    what ``gather(viewer, proc)`` took from the viewer while it ran)."""
    viewer = pyigtl.OpenIGTLinkClient(host="127.0.0.1", port=port)
    try:
        proc = subprocess.Popen(
            [*SONOMAP, *map(str, args), "--igtl-serve", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        got = gather(viewer, proc)
        out, err = proc.communicate(timeout=PROC_TIMEOUT_S)
    finally:
        viewer.stop()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), got


def recording_session(source: str | Path, model: Path, recording: Path, seconds: float) -> list:
    """`sonomap live` arguments of a headless session from ``source`` that records the whole image
    (``--roi full``) as a sequence, in strict mode, for ``seconds``."""
    return [
        "live",
        "--source",
        source,
        "--headless",
        "--roi",
        "full",
        "--mode",
        "strict",
        "--duration",
        seconds,
        "--model",
        model,
        "--record-sequence",
        recording,
    ]


@pytest.mark.timeout(180)
def test_live_session_round_trips_through_a_sequence(tmp_path, busi_sample, model):
    frames = streamed_images(busi_sample)
    plus = PlusStandIn(frames)
    recording = tmp_path / "rec" / "session.seq.nrrd"
    try:
        spec = f"igtl://127.0.0.1:{plus.port}?device={DEVICE}&timeout=10"
        # the whole PLUS image goes into the sequence
        live, sent_live = run_with_viewer(
            recording_session(spec, model, recording, LIVE_SECONDS), free_port()
        )
    finally:
        plus.stop()
    assert live.returncode == 0, live.stderr[-3000:]
    assert f"wrote {recording}" in live.stdout

    # The recording: every frame is the image PLUS sent at its timestamp, bit for bit, with its
    # transform and geometry.
    source = SequenceSource(recording)
    assert source.frames >= 10, f"only {source.frames} frames recorded"
    recorded = {}
    for frame in source:
        ts = frame.meta["igtl_timestamp"]
        np.testing.assert_array_equal(frame.image[:, :, 0], frames[plus.index_for(ts)])
        np.testing.assert_array_equal(frame.meta["transforms"]["ProbeToTracker"], PROBE_TO_TRACKER)
        np.testing.assert_allclose(frame.meta["ijk_to_world"], image_matrix(), atol=1e-9)
        assert frame.meta["device"] == DEVICE and frame.meta["mm_per_pixel"] == pytest.approx(SPACING_MM)
        recorded[ts] = frame.image[:, :, 0]
    assert len(set(source.timestamps)) == source.frames and source.timestamps == sorted(source.timestamps)
    labelmaps, _ = nrrd.read(str(layout.sequence_paths(recording)[layout.LABELMAP]), index_order="C")
    assert labelmaps.shape == (source.frames, 1, source.height, source.width)

    # What live sent for a frame, the recorded labelmap holds for it.
    index_of = {ts: n for n, ts in enumerate(source.timestamps)}
    checked = [ts for ts in sent_live if ts in index_of and "labelmap" in sent_live[ts]]
    assert len(checked) >= 2, "the viewer saw too few of the recorded frames"
    for ts in checked:
        np.testing.assert_array_equal(sent_live[ts]["labelmap"], labelmaps[index_of[ts], 0])

    # Replay of the recording, paced by its timestamps, sends the same labelmaps and transforms
    # with the same timestamps.
    replay, sent_replay = run_with_viewer(["replay", recording, "--realtime", "--model", model], free_port())
    assert replay.returncode == 0, replay.stderr[-3000:]
    assert sent_replay and set(sent_replay) <= set(recorded), "replay sent timestamps never recorded"
    # frames whose labelmap both viewers received (the live viewer may miss the last one's as the
    # session ends, as `checked` above allows)
    common = [
        ts
        for ts in sent_replay
        if ts in sent_live and "labelmap" in sent_replay[ts] and "labelmap" in sent_live[ts]
    ]
    assert len(common) >= 2, "live and replay viewers saw too few of the same frames"
    for ts in common:
        np.testing.assert_array_equal(sent_replay[ts]["labelmap"], sent_live[ts]["labelmap"])
    # The viewer keeps only the newest message per device, so it may see a frame's labelmap and
    # miss its transform: compare transforms where both viewers saw one.
    with_transform = [ts for ts in sent_replay if "transform" in sent_replay[ts]]
    assert len(with_transform) >= 2, "the replay viewer saw too few transforms"
    for ts in with_transform:
        np.testing.assert_array_equal(sent_replay[ts]["transform"], PROBE_TO_TRACKER)
        if "transform" in sent_live.get(ts, {}):
            np.testing.assert_array_equal(sent_replay[ts]["transform"], sent_live[ts]["transform"])


def record_folder(tmp_path: Path, busi_sample: Path, model: Path, *extra) -> tuple[Path, Path]:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, image in enumerate(streamed_images(busi_sample)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    recording = tmp_path / "out" / "clip.seq.nrrd"
    sonomap("replay", folder, "--model", model, "--roi", "full", "--record-sequence", recording, *extra)
    return folder, recording


def test_replay_records_every_frame_with_its_masks_and_reads_back(tmp_path, busi_sample, model):
    folder, recording = record_folder(tmp_path, busi_sample, model, "--save-masks", tmp_path / "masks")
    source = open_source(str(recording))
    assert isinstance(source, SequenceSource) and not source.live
    images = sorted(folder.glob("*.png"))
    labelmaps, header = nrrd.read(str(layout.sequence_paths(recording)[layout.LABELMAP]), index_order="C")
    probability, _ = nrrd.read(str(layout.sequence_paths(recording)[layout.PROBABILITY]), index_order="C")
    assert header["DataNodeClassName"] == "vtkMRMLLabelMapVolumeNode"
    got = list(source)
    assert len(got) == len(images) == labelmaps.shape[0] == probability.shape[0]
    for n, frame in enumerate(got):
        np.testing.assert_array_equal(frame.image[:, :, 0], cv2.imread(str(images[n]), cv2.IMREAD_GRAYSCALE))
        mask = cv2.imread(str(tmp_path / "masks" / f"{n:06d}_mask.png"), cv2.IMREAD_GRAYSCALE)
        np.testing.assert_array_equal(np.where(labelmaps[n, 0] > 0, 255, 0), mask)
        assert ((probability[n, 0] >= 128) == (labelmaps[n, 0] > 0)).mean() > 0.99  # mask = prob > 0.5
        assert header[layout.frame_key(n, layout.PREDICTION_OF)] == str(n)  # each frame its own prediction
    assert 0 < (labelmaps > 0).mean() < 1, "the model marks nothing or everything"


def test_simpleitk_reads_the_files_with_geometry_and_fields(tmp_path, busi_sample, model):
    sitk = pytest.importorskip(
        "SimpleITK", reason="SimpleITK (ITK's NRRD reader, as in 3D Slicer) not installed"
    )
    _, recording = record_folder(tmp_path, busi_sample, model, "--mm-per-pixel", "0.25")
    source = SequenceSource(recording)
    for kind, path in layout.sequence_paths(recording).items():
        image = sitk.ReadImage(str(path))
        # ITK 5.4 reads the list axis as pixel components (ITK 6 / Slicer: as a 4th dimension)
        frames = image.GetNumberOfComponentsPerPixel() if image.GetDimension() == 3 else image.GetSize()[3]
        assert frames == source.frames
        assert image.GetSize()[:3] == (source.width, source.height, 1)
        assert image.GetSpacing()[:2] == pytest.approx((0.25, 0.25))
        assert image.GetMetaData("DataNodeClassName") == layout.DATA_NODE_CLASS[kind]
        assert image.GetMetaData(layout.CONTENT_KEY) == kind
        assert image.GetMetaData(f"axis {layout.LIST_AXIS} index type") == "numeric"
        if kind == layout.IMAGE:
            pixels = sitk.GetArrayFromImage(image).reshape(source.height, source.width, source.frames)
            for n, gray in enumerate(source.images()):
                np.testing.assert_array_equal(pixels[:, :, n], gray)
            stamp = float(image.GetMetaData(layout.frame_key(1, layout.TIMESTAMP)))
            assert stamp == source.timestamps[1]


def test_a_write_error_mid_session_stops_the_recorder_not_the_video(tmp_path, model):
    """A real EFBIG: the recorder's files may not grow past 3 frames; the live session goes on."""
    recording = tmp_path / "rec.seq.nrrd"
    frame_bytes = 1200 * 840  # the synthetic screen's ROI
    limit = 3 * frame_bytes + frame_bytes // 2
    args = [*SONOMAP, "live", "--source", "synthetic", "--fps", "10", "--duration", "4", "--headless"]
    args += [
        "--model",
        str(model),
        "--record-sequence",
        str(recording),
        "--summary",
        str(tmp_path / "s.json"),
    ]
    run = subprocess.run(
        args, capture_output=True, text=True, timeout=PROC_TIMEOUT_S, preexec_fn=small_disk(limit)
    )
    assert run.returncode == 0, run.stderr[-3000:]
    failures = [line for line in run.stderr.splitlines() if "sink sequence failed" in line]
    assert len(failures) == 1 and "File too large" in failures[0], run.stderr[-3000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    kept = SequenceSource(recording)
    assert 1 <= kept.frames <= 3
    assert summary["frames"] > kept.frames + 5, "the video stopped with the recorder"
    assert len(list(kept)) == kept.frames  # what was written before the error reads back


def test_truncated_and_corrupt_recordings_are_one_line_errors(tmp_path, busi_sample, model):
    _, recording = record_folder(tmp_path, busi_sample, model)
    data = layout.data_path(recording)
    frame_bytes = SequenceSource(recording).frame_bytes
    bad = tmp_path / "bad.seq.nrrd"
    text = recording.read_text()
    bad.write_text(
        text.replace("Seq_Frame0002_Timestamp:=", "Seq_Frame0002_Timestamp:=x").replace(
            "clip.seq.raw", str(data)
        )
    )
    with pytest.raises(InputError, match=r"bad\.seq\.nrrd: frame 2: Timestamp 'x.*' is not a number"):
        SequenceSource(bad)
    with open(data, "r+b") as f:
        f.truncate(frame_bytes + 10)
    with pytest.raises(InputError, match=r"clip\.seq\.nrrd: data ends in frame 1 of 3 .*truncated"):
        SequenceSource(recording)
    run = sonomap("replay", recording, "--model", model, check=False)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].endswith("truncated") and str(recording) in run.stderr

    bad.write_bytes(b"NRRD0005\ndimension: 4\nsizes: 10 x 1 3\n\n")
    with pytest.raises(InputError, match=r"bad\.seq\.nrrd: not a readable NRRD sequence header"):
        SequenceSource(bad)
    bad.write_bytes(b"not a nrrd at all\n")
    with pytest.raises(InputError, match=r"bad\.seq\.nrrd: not a readable NRRD sequence header"):
        SequenceSource(bad)


def test_a_truncated_gzip_recording_names_the_frame(tmp_path):
    """Sequences Slicer saves compressed (attached header, gzip) read frame by frame too."""
    frames = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)  # (frames, height, width)
    header = {
        "kinds": ["domain", "domain", "domain", "list"],
        "encoding": "gzip",
        "space": "left-posterior-superior",
    }
    header["space directions"] = np.vstack([np.diag([0.5, 0.5, 1.0]), np.full(3, np.nan)])
    path = tmp_path / "slicer.seq.nrrd"
    nrrd.write(str(path), frames.reshape(3, 1, 4, 5), header, index_order="C")
    source = SequenceSource(path)
    assert [g.tolist() for g in source.images()] == frames.tolist()
    assert source.system == "lps" and source.frame_meta(0)["mm_per_pixel"] == 0.5
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(InputError, match=r"slicer\.seq\.nrrd: .*frame \d of 3"):
        list(SequenceSource(path).images())


def test_missing_pynrrd_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "nrrd", None)
    with pytest.raises(
        SonomapError, match=r"--record-sequence needs pynrrd: pip install 'sonomap\[sequences\]'"
    ):
        layout.require_pynrrd("--record-sequence")


def test_bench_counts_every_byte_written(tmp_path):
    from edge_runtime.tools.sequence_bench import run

    report = run(5, 640, 480, tmp_path)
    width, height = map(int, report["roi"].split("x"))
    assert report["frames"] == 5
    assert report["bytes_per_frame"] == pytest.approx(3 * width * height + report["header_bytes_per_frame"])
    assert sum(report["cpu_ms_per_frame"].values()) > 0


def test_a_list_first_sequence_as_older_slicer_wrote_reads_and_loops_with_rising_pts(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (3, 4, 5), dtype=np.uint8)  # (frames, height, width)
    header = {
        "kinds": ["list", "domain", "domain", "domain"],
        "encoding": "raw",
        "space": "right-anterior-superior",
        "space directions": np.vstack([np.full(3, np.nan), np.diag([0.3, 0.3, 1.0])]),
        "axis 0 index values": "0 0.1 0.2",
    }
    path = tmp_path / "old.seq.nrrd"
    nrrd.write(str(path), np.ascontiguousarray(frames.transpose(1, 2, 0))[None], header, index_order="C")
    source = SequenceSource(path, loop=True)
    assert source.list_first and source.fps == pytest.approx(10.0)
    got = []
    for frame in source:
        got.append(frame)
        if len(got) == 6:
            break
    for n, frame in enumerate(got):
        np.testing.assert_array_equal(frame.image[:, :, 0], frames[n % 3])
    assert [round(f.pts, 6) for f in got] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]  # a loop keeps the pace
    assert got[0].meta["mm_per_pixel"] == pytest.approx(0.3)


def plus_file(path: Path, frames: np.ndarray, compressed: bool, orientation: str = "MF") -> None:
    """A PLUS sequence file as PLUS writes it (MetaImage, per-frame fields; frame 1 marked INVALID)."""
    n, height, width = frames.shape
    data = zlib.compress(frames.tobytes()) if compressed else frames.tobytes()
    fields = [
        "ObjectType = Image",
        "NDims = 3",
        "AnatomicalOrientation = RAI",
        "BinaryData = True",
        "BinaryDataByteOrderMSB = False",
        f"CompressedData = {compressed}",
        *([f"CompressedDataSize = {len(data)}"] if compressed else []),
        f"DimSize = {width} {height} {n}",
        "ElementSpacing = 0.2 0.25 1",
        "Offset = 1 2 3",
        "TransformMatrix = 1 0 0 0 1 0 0 0 1",
        "ElementType = MET_UCHAR",
        "Kinds = domain domain list",
        f"UltrasoundImageOrientation = {orientation}",
        "UltrasoundImageType = BRIGHTNESS",
    ]
    for i in range(n):
        fields += [
            f"Seq_Frame{i:04d}_ProbeToTrackerTransform = " + " ".join(map(str, PROBE_TO_TRACKER.ravel() + i)),
            f"Seq_Frame{i:04d}_ProbeToTrackerTransformStatus = OK",
            f"Seq_Frame{i:04d}_Timestamp = {100 + i * 0.05:.3f}",
            f"Seq_Frame{i:04d}_ImageStatus = {'INVALID' if i == 1 else 'OK'}",
        ]
    path.write_bytes(("\n".join([*fields, "ElementDataFile = LOCAL"]) + "\n").encode() + data)


@pytest.mark.parametrize("compressed", [False, True])
def test_plus_metaimage_sequences_read_frame_by_frame(tmp_path, compressed):
    pytest.importorskip("SimpleITK", reason="PLUS .mha sequences are read through SimpleITK")
    frames = np.random.default_rng(1).integers(0, 256, (4, 6, 7), dtype=np.uint8)
    path = tmp_path / "plus.igs.mha"
    plus_file(path, frames, compressed, orientation="UF")
    got = list(open_source(str(path)))
    assert [f.meta["sequence_frame"] for f in got] == [0, 2, 3]  # the INVALID frame is skipped
    for frame in got:
        n = frame.meta["sequence_frame"]
        np.testing.assert_array_equal(frame.image[:, :, 0], frames[n][:, ::-1])  # UF -> MF
        assert frame.meta["igtl_timestamp"] == pytest.approx(100 + n * 0.05)
        np.testing.assert_array_equal(frame.meta["transforms"]["ProbeToTracker"], PROBE_TO_TRACKER + n)
        np.testing.assert_allclose(frame.meta["ijk_to_world"][:3, 3], [1, 2, 3])
        assert frame.meta["pixel_spacing"] == pytest.approx((0.25, 0.2))
    if compressed:
        path.write_bytes(path.read_bytes()[:-20])
        with pytest.raises(InputError, match=r"plus\.igs\.mha: .*frame 3 of 4"):
            list(open_source(str(path)))


def test_plus_metaimage_replays_through_the_pipeline(tmp_path, busi_sample, model):
    pytest.importorskip("SimpleITK", reason="PLUS .mha sequences are read through SimpleITK")
    frames = np.stack(streamed_images(busi_sample))
    path = tmp_path / "session.seq.mha"
    plus_file(path, frames, compressed=True)
    sonomap("replay", path, "--model", model, "--save-masks", tmp_path / "masks")
    assert sorted(p.name for p in (tmp_path / "masks").glob("*_mask.png")) == [
        "000000_mask.png",
        "000001_mask.png",
    ]


def test_missing_simpleitk_for_plus_files_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "SimpleITK", None)
    (tmp_path / "x.igs.mha").write_bytes(b"ObjectType = Image\n")
    with pytest.raises(SonomapError, match=r"x\.igs\.mha: reading a PLUS MetaImage sequence needs SimpleITK"):
        open_source(str(tmp_path / "x.igs.mha"))


def test_moving_image_geometry_and_frames_without_a_prediction_are_kept(tmp_path):
    """PLUS's Image_Reference moves with the probe: each frame's IJK-to-world is kept. A frame the AI
    did not answer (off, loading) gets an empty labelmap marked INVALID."""
    from edge_runtime.frames import Frame, Prediction
    from edge_runtime.roi import Roi
    from edge_runtime.sinks.sequence import SequenceRecorder

    recorder = SequenceRecorder(tmp_path / "moving.seq.nrrd", live=False)
    roi = Roi(2, 1, 5, 4)
    images, matrices = [], []
    for n in range(3):
        image = np.random.default_rng(n).integers(0, 256, (6, 8, 3), dtype=np.uint8)
        image[:, :, 1] = image[:, :, 2] = image[:, :, 0]  # gray, as scanners send
        matrix = image_matrix()
        matrix[:3, 3] += [n * 2.0, 0.0, 0.0]
        meta = {
            "roi": roi,
            "ijk_to_world": matrix,
            "igtl_coordinate_system": "lps",
            "igtl_timestamp": 50.0 + n,
        }
        frame = Frame(n, image, 0.0, None, meta)
        mask = np.ones((roi.h, roi.w), np.uint8)
        prediction = (
            None if n == 1 else Prediction(mask, mask.astype(np.float32) * 0.75, frame=frame, roi=roi)
        )
        recorder.on_frame(frame, prediction, image, {})
        images.append(image[1:5, 2:7, 0])
        matrices.append(matrix)
    recorder.close()
    assert recorder.error is None and recorder.frames == 3
    source = SequenceSource(tmp_path / "moving.seq.nrrd")
    for n, frame in enumerate(source):
        np.testing.assert_array_equal(frame.image[:, :, 0], images[n])
        expected = matrices[n].copy()
        expected[:3, 3] += expected[:3, :3] @ [roi.x, roi.y, 0.0]  # the ROI's corner
        np.testing.assert_allclose(frame.meta["ijk_to_world"], expected)
        assert frame.meta["igtl_coordinate_system"] == "lps" and frame.meta["igtl_timestamp"] == 50.0 + n
    labelmaps, header = nrrd.read(str(tmp_path / "moving.labelmap.seq.nrrd"), index_order="C")
    probability, _ = nrrd.read(str(tmp_path / "moving.probability.seq.nrrd"), index_order="C")
    assert [header[layout.frame_key(n, layout.IMAGE_STATUS)] for n in range(3)] == ["OK", "INVALID", "OK"]
    assert [header[layout.frame_key(n, layout.PREDICTION_OF)] for n in range(3)] == ["0", "none", "2"]
    assert labelmaps[1].max() == 0 and probability[1].max() == 0  # no prediction: zeros
    assert (labelmaps[[0, 2]] == 1).all() and (probability[[0, 2]] == round(0.75 * 255)).all()


def test_a_live_session_never_writes_over_an_earlier_recording(tmp_path):
    """A service restarted after a crash records beside the earlier file; a replay remakes its output."""
    from edge_runtime.frames import Frame
    from edge_runtime.sinks.sequence import SequenceRecorder

    def record(live: bool) -> SequenceRecorder:
        recorder = SequenceRecorder(tmp_path / "%Y" / "case.seq.nrrd", live=live)
        image = np.zeros((4, 6, 3), np.uint8)
        recorder.on_frame(Frame(0, image, 0.0, None, {"igtl_timestamp": 1.0}), None, image, {})
        recorder.close()
        return recorder

    year = time.strftime("%Y")
    assert record(live=True).files == [tmp_path / year / "case.seq.nrrd"]
    assert record(live=True).files == [tmp_path / year / "case-1.seq.nrrd"]
    assert (tmp_path / year / "case-1.labelmap.seq.nrrd").is_file()
    assert record(live=False).files == [tmp_path / year / "case.seq.nrrd"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_is_counted_and_shown_and_never_blocks(tmp_path):
    """The labelmap's data file on /dev/full (every write: ENOSPC): the recorder stops, counts it
    (``recording_failed``, /metrics), puts a banner on every frame after, and takes frames without waiting."""
    from edge_runtime.frames import Frame
    from edge_runtime.live_stats import EVENTS
    from edge_runtime.sinks.sequence import BANNER, SequenceRecorder

    (tmp_path / "full.labelmap.seq.raw").symlink_to("/dev/full")
    before = EVENTS.snapshot().get("recording_failed", 0)
    recorder = SequenceRecorder(tmp_path / "full.seq.nrrd", live=False)
    image = np.zeros((4, 6, 3), np.uint8)
    for n in range(50):  # far more than the queue holds: a stopped writer must not block the caller
        frame = Frame(n, image, 0.0, None, {"igtl_timestamp": float(n)})
        recorder.on_frame(frame, None, image, {})
    recorder.close()
    assert isinstance(recorder.error, OSError) and recorder.frames == 0
    assert EVENTS.snapshot().get("recording_failed", 0) == before + 1
    assert recorder.banners(Frame(50, image, 0.0), "ON") == [("warning", BANNER)]
    with pytest.raises(InputError, match=r"full\.seq\.nrrd: the sequence holds no frames"):
        SequenceSource(tmp_path / "full.seq.nrrd")  # the headers were finalised for the 0 frames kept


def test_a_recorded_clip_rescored_gives_the_clips_masks(tmp_path, model):
    """An H.264 scanner-screen clip (decoded in YUV): its recording holds the model's very input, so
    replaying the recording with the same model gives the clip's masks, frame for frame."""
    clip = tmp_path / "clip.mp4"
    sonomap("make-clip", "--out", clip, "--frames", 6, "--size", "640x360", "--noise", 0)
    recording = tmp_path / "clip.seq.nrrd"
    sonomap("replay", clip, "--model", model, "--save-masks", tmp_path / "a", "--record-sequence", recording)
    sonomap("replay", recording, "--model", model, "--save-masks", tmp_path / "b")
    masks_a = sorted((tmp_path / "a").glob("*_mask.png"))
    assert len(masks_a) == 6 and [p.name for p in masks_a] == sorted(
        p.name for p in (tmp_path / "b").glob("*_mask.png")
    )
    for a in masks_a:
        np.testing.assert_array_equal(
            cv2.imread(str(a), cv2.IMREAD_GRAYSCALE),
            cv2.imread(str(tmp_path / "b" / a.name), cv2.IMREAD_GRAYSCALE),
        )
    assert any(0 < (cv2.imread(str(a), cv2.IMREAD_GRAYSCALE) > 0).mean() < 1 for a in masks_a)
    stamps = SequenceSource(recording).timestamps  # the clip's own times: make-clip writes 30 fps
    assert np.diff(stamps) == pytest.approx(np.full(5, 1 / 30), abs=1e-3)


def test_live_recording_drops_rather_than_waits_for_a_stalled_disk(tmp_path):
    """The image data file is a FIFO nobody reads yet: the writer thread stalls in it, as on a hung
    disk. A live session's frames go on being taken at once; those the queue cannot hold are dropped
    and counted in the header. Then the FIFO is drained and every queued frame is written."""
    import os
    import threading

    from edge_runtime.frames import Frame
    from edge_runtime.sinks.sequence import SequenceRecorder
    from edge_runtime.sinks.threaded import QUEUE_FRAMES

    os.mkfifo(tmp_path / "live.seq.raw")
    recorder = SequenceRecorder(tmp_path / "live.seq.nrrd", live=True)
    image = np.zeros((4, 6, 3), np.uint8)
    frames = 40
    for n in range(frames):
        recorder.on_frame(Frame(n, image, 0.0, None, {"igtl_timestamp": float(n)}), None, image, {})
    assert recorder.dropped >= frames - QUEUE_FRAMES - 1  # the writer holds one, the queue the rest
    drained = bytearray()
    reader = threading.Thread(target=lambda: drained.extend((tmp_path / "live.seq.raw").read_bytes()))
    reader.start()
    recorder.close()
    reader.join(timeout=10)
    assert recorder.frames == frames - recorder.dropped and len(drained) == recorder.frames * 4 * 6
    header = nrrd.read_header(str(tmp_path / "live.seq.nrrd"))
    assert int(header[layout.DROPPED_KEY]) == recorder.dropped and int(header["sizes"][3]) == recorder.frames


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_headers_that_cannot_be_finalised_after_a_failed_write_are_logged_too(tmp_path, caplog):
    """The labelmap's data file and the image header on /dev/full: the first frame's write fails, and
    finalising the headers then fails too. Both are logged: the second says the file is not whole."""
    import logging

    from edge_runtime.frames import Frame
    from edge_runtime.sinks.sequence import SequenceRecorder, log

    (tmp_path / "full.labelmap.seq.raw").symlink_to("/dev/full")
    (tmp_path / "full.seq.nrrd").symlink_to("/dev/full")
    recorder = SequenceRecorder(tmp_path / "full.seq.nrrd", live=False)
    image = np.zeros((4, 6, 3), np.uint8)
    with caplog.at_level(logging.ERROR, logger=log.name):
        recorder.on_frame(Frame(0, image, 0.0, None, {"igtl_timestamp": 0.0}), None, image, {})
        recorder.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert isinstance(recorder.error, OSError)
    assert len(errors) == 2 and "stops recording" in errors[0], errors
    assert "full.seq.nrrd could not be finalised either" in errors[1] and "No space left" in errors[1], errors
