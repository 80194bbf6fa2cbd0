/**
 * Charts: a GPU's 15-minute sparkline is a small canvas drawn by hand (hundreds can be on screen, a
 * chart library instance each would be heavy); the queue's history is a uPlot chart with axes.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

function cssColor(element: Element, name: string, fallback: string): string {
  return getComputedStyle(element).getPropertyValue(name).trim() || fallback;
}

/** Percent values 0-100, oldest first; null is a gap. */
export function Sparkline({ values, label }: { values: ReadonlyArray<number | null>; label: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const last = [...values].reverse().find((value) => value !== null);
  useEffect(() => {
    const element = canvas.current;
    if (!element) return;
    const context = element.getContext('2d');
    if (!context) return;
    const ratio = window.devicePixelRatio || 1;
    const width = element.clientWidth || 180;
    const height = element.clientHeight || 24;
    element.width = Math.round(width * ratio);
    element.height = Math.round(height * ratio);
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    const count = Math.max(values.length, 2);
    context.strokeStyle = cssColor(element, '--spark', '#4e9af1');
    context.lineWidth = 1.25;
    context.beginPath();
    let drawing = false;
    values.forEach((value, index) => {
      if (value === null) {
        drawing = false;
        return;
      }
      const x = (index / (count - 1)) * (width - 1);
      const y = height - 1 - (value / 100) * (height - 2);
      if (drawing) context.lineTo(x, y);
      else context.moveTo(x, y);
      drawing = true;
    });
    context.stroke();
  });
  return (
    <canvas
      ref={canvas}
      class="sparkline"
      role="img"
      aria-label={`${label}: ${last === undefined ? 'no samples yet' : `now ${last}%`}`}
      width={180}
      height={24}
    />
  );
}

/** The queue length over the history window (x: the gateway's time in seconds). */
export function QueueChart({
  values,
  sampleMs,
  now,
}: {
  values: ReadonlyArray<number | null>;
  sampleMs: number;
  now: number;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = (): uPlot.AlignedData => {
    const times = values.map((_value, index) => (now - (values.length - 1 - index) * sampleMs) / 1000);
    return [times, values.map((value) => value)];
  };
  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const stroke = cssColor(element, '--spark', '#4e9af1');
    const axis = cssColor(element, '--muted', '#888');
    plot.current = new uPlot(
      {
        width: Math.max(320, element.clientWidth || 600),
        height: 180,
        legend: { show: false },
        cursor: { show: true },
        scales: { y: { range: (_u, _min, max) => [0, Math.max(5, max ?? 0)] } },
        axes: [
          { stroke: axis, grid: { stroke: 'rgba(128,128,128,0.15)' } },
          { stroke: axis, grid: { stroke: 'rgba(128,128,128,0.15)' } },
        ],
        series: [
          {},
          { label: 'queued sessions', stroke, width: 2, fill: 'rgba(78,154,241,0.15)', spanGaps: false },
        ],
      },
      data(),
      element,
    );
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => {
    plot.current?.setData(data());
  });
  return <div ref={host} class="queue-chart" role="img" aria-label="Queue length over the last 15 minutes" />;
}
