/**
 * Draws the phone app's icons (app/icons/*.png): a white padlock on Latchkey's blue, as PNGs written with
 * node:zlib, so the icons need no image tools and can be made again (`node --import tsx scripts/app-icons.ts`).
 *
 * Each pixel is 4×4 samples of a few shapes given as distance tests, which anti-aliases the edges. The
 * "any" icons are a rounded square on transparency; the maskable ones and the apple-touch-icon fill the
 * square (the system cuts the shape), their padlock inside the maskable safe zone (a circle of 40%).
 */
import { deflateSync, crc32 } from 'node:zlib';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const BLUE: Rgba = [0x2f, 0x5b, 0xd3, 255];
const WHITE: Rgba = [255, 255, 255, 255];
const CLEAR: Rgba = [0, 0, 0, 0];
const SAMPLES = 4;

type Rgba = [number, number, number, number];

interface Icon {
  file: string;
  size: number;
  /** Full square (maskable, apple-touch-icon) or a rounded square on transparency. */
  fullBleed: boolean;
  /** The padlock's scale around the centre (1: as drawn for the "any" icons). */
  scale: number;
}

export const ICONS: readonly Icon[] = [
  { file: 'icon-192.png', size: 192, fullBleed: false, scale: 1 },
  { file: 'icon-512.png', size: 512, fullBleed: false, scale: 1 },
  { file: 'maskable-192.png', size: 192, fullBleed: true, scale: 0.8 },
  { file: 'maskable-512.png', size: 512, fullBleed: true, scale: 0.8 },
  { file: 'apple-touch-icon.png', size: 180, fullBleed: true, scale: 0.9 },
];

/** Whether (x, y) lies in a rectangle of centre (cx, cy), half sizes (hw, hh) and corner radius r. */
function inRoundedRect(x: number, y: number, cx: number, cy: number, hw: number, hh: number, r: number): boolean {
  const dx = Math.max(Math.abs(x - cx) - (hw - r), 0);
  const dy = Math.max(Math.abs(y - cy) - (hh - r), 0);
  return Math.abs(x - cx) <= hw && Math.abs(y - cy) <= hh && dx * dx + dy * dy <= r * r;
}

/** The padlock in unit coordinates (0..1, y down), centred on (0.5, 0.55): body, shackle, keyhole. */
function padlock(x: number, y: number): 'body' | 'hole' | undefined {
  const hole = Math.hypot(x - 0.5, y - 0.6) <= 0.05 || (Math.abs(x - 0.5) <= 0.022 + (y - 0.6) * 0.15 && y >= 0.6 && y <= 0.72);
  if (inRoundedRect(x, y, 0.5, 0.64, 0.22, 0.16, 0.04)) return hole ? 'hole' : 'body';
  const [cx, cy, r, half] = [0.5, 0.42, 0.13, 0.035];
  const ring = y <= cy ? Math.abs(Math.hypot(x - cx, y - cy) - r) : Math.min(Math.abs(x - (cx - r)), Math.abs(x - (cx + r)));
  return ring <= half && y <= 0.5 ? 'body' : undefined;
}

function colourAt(icon: Icon, x: number, y: number): Rgba {
  if (!icon.fullBleed && !inRoundedRect(x, y, 0.5, 0.5, 0.5, 0.5, 0.2)) return CLEAR;
  const [gx, gy] = [0.5 + (x - 0.5) / icon.scale, 0.55 + (y - 0.55) / icon.scale];
  return padlock(gx, gy) === 'body' ? WHITE : BLUE;
}

/** The icon's pixels, RGBA, each the average of SAMPLES² samples. */
function pixels(icon: Icon): Buffer {
  const { size } = icon;
  const out = Buffer.alloc(size * size * 4);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      const sum = [0, 0, 0, 0];
      for (let sy = 0; sy < SAMPLES; sy++) {
        for (let sx = 0; sx < SAMPLES; sx++) {
          const c = colourAt(icon, (px + (sx + 0.5) / SAMPLES) / size, (py + (sy + 0.5) / SAMPLES) / size);
          // Premultiplied, so a transparent sample adds no colour to an edge.
          for (let i = 0; i < 3; i++) sum[i]! += (c[i]! * c[3]) / 255;
          sum[3]! += c[3];
        }
      }
      const n = SAMPLES * SAMPLES;
      const alpha = sum[3]! / n;
      const at = (py * size + px) * 4;
      for (let i = 0; i < 3; i++) out[at + i] = alpha ? Math.round(((sum[i]! / n) * 255) / alpha) : 0;
      out[at + 3] = Math.round(alpha);
    }
  }
  return out;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A PNG of RGBA pixels: 8 bits a channel, no filtering, one zlib stream. */
export function png(size: number, rgba: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const rows = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) rgba.copy(rows, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

if (import.meta.main) {
  const dir = path.resolve(import.meta.dirname, '..', 'app', 'icons');
  mkdirSync(dir, { recursive: true });
  for (const icon of ICONS) {
    writeFileSync(path.join(dir, icon.file), png(icon.size, pixels(icon)));
    console.log(`app/icons/${icon.file} (${icon.size}×${icon.size})`);
  }
}
