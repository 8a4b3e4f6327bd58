// Training and validation loss by step, live (uPlot: small, and redraws thousands of points
// without effort). It fills its container's width; hovering shows the values at a step, and
// either curve can be hidden.
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface LossPoint {
  step: number;
  train_loss?: number;
  valid_loss?: number;
}

export function LossChart({ points, height = 240 }: { points: LossPoint[]; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [show, setShow] = useState({ train: true, valid: true });

  useEffect(() => {
    const el = box.current!;
    const css = getComputedStyle(el);
    const axisColor = css.getPropertyValue('--muted').trim() || '#606878';
    const grid = css.getPropertyValue('--line').trim() || '#e2e5eb';
    const axis = (label: string) => ({ label, stroke: axisColor, grid: { stroke: grid }, ticks: { stroke: grid } });
    plot.current = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height,
        scales: { x: { time: false } },
        // Steps are whole numbers: no tick at 1.5.
        axes: [{ ...axis('step'), incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000] }, axis('loss')],
        cursor: { drag: { x: true, y: false } },
        series: [
          { label: 'step' },
          { label: 'training', stroke: '#2f6fde', width: 2, spanGaps: true, value: (_u, v) => (v == null ? '–' : v.toFixed(4)) },
          { label: 'validation', stroke: '#e08a00', width: 2, spanGaps: true, points: { show: true, size: 5 }, value: (_u, v) => (v == null ? '–' : v.toFixed(4)) },
        ],
        legend: { show: true, live: true },
      },
      [[], [], []],
      el,
    );
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [height]);

  useEffect(() => {
    const steps = points.map((p) => p.step);
    const train = points.map((p) => p.train_loss ?? null);
    const valid = points.map((p) => p.valid_loss ?? null);
    plot.current?.setData([steps, train, valid] as uPlot.AlignedData);
  }, [points]);

  useEffect(() => {
    plot.current?.setSeries(1, { show: show.train });
    plot.current?.setSeries(2, { show: show.valid });
  }, [show]);

  return (
    <div className="loss-chart-wrap">
      <div className="chart-toggles">
        <label>
          <input type="checkbox" checked={show.train} onChange={(e) => setShow((s) => ({ ...s, train: e.target.checked }))} /> training
        </label>
        <label>
          <input type="checkbox" checked={show.valid} onChange={(e) => setShow((s) => ({ ...s, valid: e.target.checked }))} /> validation
        </label>
      </div>
      <div className="loss-chart" ref={box} data-points={points.length} />
    </div>
  );
}
