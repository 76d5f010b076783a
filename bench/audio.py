"""Audio clips for the tests, and the measurement behind ``AudioSignal``'s thresholds.

Clips: synthetic speech from espeak-ng (Debian ``espeak-ng``, installed by
``scripts/setup.sh``) and music-like tones from ffmpeg's ``aevalsrc`` (notes stepping
through a scale over a bass line), re-encoded with the same ffmpeg binary the library
uses. Shared by the tests and ``python -m bench.audio``; it lives here because bench
must not import tests.

``python -m bench.audio`` prints, for two speech and two music clips banked as MP3
192k: the share of aligned words of every re-encoded copy and of every unrelated
pair at 4, 6 and 8 bits, the fingerprint time of a 30 s clip and the fingerprint size.
"""

from __future__ import annotations

import itertools
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.clips import ffmpeg

SPEECH = (
    ("en", "The quick brown fox jumps over the lazy dog. This recording was made without consent "
           "and must never be shared again. Please remember the number four five six seven."),
    ("en-us", "Welcome to the weekly cooking show. Today we prepare a simple tomato soup with basil, "
              "garlic and a little olive oil. Stir gently and serve warm."),
)
# Two "tunes": a note every 1/4 s (resp. 1/3 s) stepping by fifths (resp. fourths) over a bass.
MUSIC = (
    "0.4*sin(2*PI*220*pow(2,mod(floor(t*4)*5,12)/12)*t)+0.2*sin(2*PI*110*pow(2,mod(floor(t)*7,12)/12)*t)",
    "0.4*sin(2*PI*330*pow(2,mod(floor(t*3)*7,12)/12)*t)+0.2*sin(2*PI*165*pow(2,mod(floor(t/2)*3,12)/12)*t)",
)
# Re-encodes of a banked clip: (name, ffmpeg output arguments, file suffix), applied to a WAV.
COPIES = (
    ("opus-32k-mono", ["-ac", "1", "-c:a", "libopus", "-b:a", "32k"], "ogg"),
    ("aac-64k-stereo", ["-ac", "2", "-c:a", "aac", "-b:a", "64k"], "m4a"),
    ("aac-48k-22khz-trim-end-3s", ["-ar", "22050", "-c:a", "aac", "-b:a", "48k"], "m4a"),
)


def espeak() -> str | None:
    return shutil.which("espeak-ng")


def _run(*args: str) -> None:
    subprocess.run([ffmpeg(), "-v", "error", "-y", *args], check=True)


def speech_wav(index: int, tmp: Path) -> Path:
    """One of the :data:`SPEECH` texts spoken by espeak-ng, 44.1 kHz stereo WAV (~10 s)."""
    exe = espeak()
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (scripts/setup.sh installs it)")
    voice, text = SPEECH[index]
    raw = tmp / f"speech{index}-raw.wav"
    subprocess.run([exe, "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
    out = tmp / f"speech{index}.wav"
    _run("-i", str(raw), "-ar", "44100", "-ac", "2", str(out))
    return out


def music_wav(index: int, tmp: Path, seconds: float = 12.0) -> Path:
    """One of the :data:`MUSIC` tunes, 44.1 kHz stereo WAV."""
    out = tmp / f"music{index}.wav"
    _run("-f", "lavfi", "-i", f"aevalsrc='{MUSIC[index]}':s=44100:d={seconds}", "-ac", "2", str(out))
    return out


def encode(src: Path, dst: Path, *args: str, start: float | None = None, length: float | None = None) -> Path:
    """``src`` re-encoded into ``dst`` with ffmpeg output ``args``, optionally cut."""
    cut = (["-ss", f"{start}"] if start else []) + (["-t", f"{length}"] if length else [])
    _run(*cut, "-i", str(src), *args, str(dst))
    return dst


def with_noise(src: Path, dst: Path, snr_db: float = 20.0) -> Path:
    """``src`` as mono with white noise mixed in at ``snr_db`` below its RMS level, Vorbis q3."""
    stats = subprocess.run([ffmpeg(), "-v", "info", "-i", str(src), "-af", "astats=measure_perchannel=0",
                            "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    rms_db = float(stats.split("RMS level dB:")[-1].split()[0])
    # Uniform white noise of amplitude a has an RMS of a / sqrt(3).
    amplitude = 10 ** ((rms_db - snr_db) / 20) * 3 ** 0.5
    _run("-i", str(src), "-f", "lavfi", "-i", f"anoisesrc=c=white:a={amplitude:.6f}:r=44100:seed=7",
         "-filter_complex", "[0:a]aresample=44100,pan=mono|c0=c0[s];[s][1:a]amix=inputs=2:duration=first:normalize=0",
         "-c:a", "libvorbis", "-q:a", "3", str(dst))
    return dst


def duration(path: Path) -> float:
    text = subprocess.run([ffmpeg(), "-i", str(path)], capture_output=True, text=True).stderr
    h, m, s = text.split("Duration: ")[1].split(",")[0].split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def copies(src: Path, tmp: Path, stem: str) -> dict[str, Path]:
    """Every re-encode case of the issue for one source WAV: other codecs and bitrates,
    mono/stereo, 20 dB SNR noise, trimmed at the start (on and off the 0.124 s hop) or end."""
    out = {}
    for name, args, suffix in COPIES:
        length = duration(src) - 3 if "trim-end" in name else None
        out[name] = encode(src, tmp / f"{stem}-{name}.{suffix}", *args, length=length)
    out["noise-20db-vorbis-mono"] = with_noise(src, tmp / f"{stem}-noise.ogg")
    for start in (1.5, 3.0, 3.06):
        out[f"trim-start-{start}s-flac"] = encode(src, tmp / f"{stem}-trim{start}.flac", "-c:a", "flac", start=start)
    return out


def main() -> None:
    from mediaguard.analysis.audio_index import AudioIndex
    from mediaguard.ingress.audio import fingerprint
    from mediaguard.signals import AudioSignal

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        sources = {f"speech{i}": speech_wav(i, tmp) for i in range(2)} | {f"music{i}": music_wav(i, tmp)
                                                                          for i in range(2)}
        banked = {k: fingerprint(encode(v, tmp / f"{k}-bank.mp3", "-c:a", "libmp3lame", "-b:a", "192k"), "mp3")
                  for k, v in sources.items()}
        index = AudioIndex.build(list(banked.values()))
        names = list(banked)
        bits = (4, 6, 8)

        def shares(q, r) -> str:
            saved = AudioSignal.bit_threshold
            try:
                out = []
                for b in bits:
                    AudioSignal.bit_threshold = b
                    out.append(f"{AudioSignal.align(q, r).share:.2f}")
                return " ".join(out)
            finally:
                AudioSignal.bit_threshold = saved

        print(f"share of aligned words at {bits} bits; index answer at {AudioSignal.bit_threshold} bits")
        for stem, src in sources.items():
            for case, path in copies(src, tmp, stem).items():
                q = fingerprint(path, {"ogg": "ogg", "m4a": "mov", "flac": "flac"}[path.suffix[1:]])
                found = [(names[i], a.share) for i, a in index.query(q)]
                print(f"copy  {stem:8} {case:28} {shares(q, banked[stem])}  index={found}")
        for a, b in itertools.permutations(names, 2):
            print(f"other {a:8} vs {b:8} {'':19} {shares(banked[a], banked[b])}")
        long = tmp / "long.wav"
        _run("-stream_loop", "3", "-i", str(sources["speech0"]), "-t", "30", str(long))
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            words = fingerprint(long, "wav")
            times.append(time.perf_counter() - t0)
        print(f"30 s WAV: median {statistics.median(times) * 1000:.0f} ms over 5 runs, {len(words)} words, "
              f"{len(words) * 4 / 0.5:.0f} raw bytes a minute, {len(AudioSignal.format(words)) * 2} base64 chars a minute")


if __name__ == "__main__":
    main()
