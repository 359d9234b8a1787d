"""Draws ``resources/self-test/face.jpg``, the photo ``likeness --self-test`` restores.

A face drawn with shapes and shading (no one's photo, so it can ship with the app), degraded
like an old snapshot (blur, grain, JPEG 30), on a plain background with a few shapes that the
self-test checks are left untouched. dlib's HOG detector finds the face (score 0.2–0.5 at the
sizes tried), so the photo goes through the same detect → align → restore → paste path as any
other. Deterministic: running it again rewrites the same bytes.

    .venv/bin/python scripts/make_self_test_sample.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "resources" / "self-test" / "face.jpg"
S = 512  # the face is drawn on the FFHQ template's canvas: eyes at y 240, mouth at y 371


def ellipse(cx: int, cy: int, ax: int, ay: int) -> np.ndarray:
    mask = np.zeros((S, S), np.uint8)
    cv2.ellipse(mask, (cx, cy), (ax, ay), 0, 0, 360, 1, -1)
    return mask


def stroke(draw) -> np.ndarray:
    mask = np.zeros((S, S), np.uint8)
    draw(mask)
    return mask


def draw_face() -> np.ndarray:
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32)
    img = np.stack([150 - yy / 8, 160 - yy / 10, 175 - yy / 12], -1)

    def fill(mask: np.ndarray, color, alpha: float = 1.0) -> None:
        nonlocal img
        m = mask[..., None].astype(np.float32) * alpha
        img = img * (1 - m) + np.array(color, np.float32) * m

    fill(ellipse(256, 520, 220, 70), (70, 80, 100))  # shoulders
    fill(stroke(lambda m: cv2.rectangle(m, (205, 380), (307, 512), 1, -1)), (190, 146, 120))  # neck
    fill(ellipse(256, 250, 168, 205), (55, 38, 28))  # hair behind
    # skin, darker toward the face's edge and lit from the upper left
    r = np.sqrt(((xx - 256) / 136) ** 2 + ((yy - 292) / 176) ** 2)
    shade = np.clip(1.08 - 0.35 * r**3 - 0.10 * (xx - 256) / 136, 0.55, 1.1)
    m = ellipse(256, 292, 136, 176)[..., None].astype(np.float32)
    img = img * (1 - m) + np.stack([222 * shade, 176 * shade, 146 * shade], -1) * m
    fill(ellipse(256, 148, 152, 78), (55, 38, 28))  # fringe
    for x in (120, 392):
        fill(ellipse(x, 282, 18, 40), (190, 145, 118))  # ears
    for cx in (192, 320):
        fill(ellipse(cx, 238, 46, 26), (170, 125, 105), 0.35)  # eye socket
        fill(ellipse(cx, 240, 27, 12), (235, 232, 225))
        fill(ellipse(cx, 240, 11, 11), (85, 58, 40))
        fill(ellipse(cx, 240, 5, 5), (15, 10, 10))
        fill(ellipse(cx + 4, 236, 2, 2), (250, 250, 250))
        fill(stroke(lambda m, cx=cx: cv2.ellipse(m, (cx, 240), (28, 13), 0, 180, 360, 1, 3)), (60, 40, 32))
        fill(stroke(lambda m, cx=cx: cv2.ellipse(m, (cx, 210), (36, 9), 0, 195, 345, 1, 7)), (58, 40, 30))
    fill(ellipse(268, 290, 8, 38), (160, 112, 92), 0.5)  # nose: shadow, tip, nostrils
    fill(ellipse(256, 318, 26, 12), (190, 140, 118), 0.6)
    fill(ellipse(245, 320, 6, 4), (95, 60, 50))
    fill(ellipse(267, 320, 6, 4), (95, 60, 50))
    fill(ellipse(256, 345, 8, 12), (180, 130, 110), 0.4)  # philtrum
    fill(ellipse(257, 372, 50, 9), (168, 88, 86))  # lips
    fill(ellipse(257, 366, 48, 7), (150, 72, 74))
    fill(stroke(lambda m: cv2.line(m, (212, 369), (302, 369), 1, 2)), (100, 45, 45))
    fill(ellipse(256, 420, 40, 14), (200, 150, 126), 0.4)  # chin
    return cv2.GaussianBlur(np.clip(img, 0, 255), (0, 0), 2.5).astype(np.uint8)


def draw_photo() -> np.ndarray:
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    photo = np.stack([110 + 40 * xx / 640, 120 + 20 * yy / 480, 96 + 30 * (1 - xx / 640)], -1)
    cv2.rectangle(photo, (30, 300), (170, 460), (170, 150, 110), -1)
    cv2.circle(photo, (560, 110), 50, (225, 210, 160), -1)
    photo = photo.astype(np.uint8)
    photo[110:340, 250:480] = cv2.resize(draw_face(), (230, 230), interpolation=cv2.INTER_AREA)
    photo = cv2.GaussianBlur(photo, (0, 0), 2.2)
    grain = np.random.default_rng(7).normal(0, 5, photo.shape)
    return np.clip(photo + grain, 0, 255).astype(np.uint8)


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".jpg", draw_photo()[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 30])
    assert ok
    OUT.write_bytes(data.tobytes())
    print(f"{OUT} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
