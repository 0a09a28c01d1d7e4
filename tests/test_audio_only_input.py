"""A file with sound and no picture (a scanner's audio export, a voice note) given as the video to
replay: one line saying there is no video stream, exit 2, not an IndexError's 'tuple index out of
range'. The file is a real WAV written by PyAV."""

from __future__ import annotations

import av
import numpy as np
from cli import sonomap
from runtime_model import dark_onnx

RATE = 8000  # Hz
SECONDS = 1


def test_an_audio_only_file_is_one_line_saying_it_has_no_video(tmp_path):
    sound = tmp_path / "note.wav"
    with av.open(str(sound), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=RATE, layout="mono")
        samples = np.zeros((1, RATE * SECONDS), np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    result = sonomap("replay", sound, "--model", dark_onnx(), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("sonomap replay: error: ") and "no video stream in it (audio or data only)" in last
    assert "tuple index" not in result.stderr
