// Training and validation loss by step, live (uPlot: small, and redraws thousands of points
// without effort).
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface LossPoint {
  step: number;
  train_loss?: number;
  valid_loss?: number;
}

export function LossChart({ points, width = 340, height = 180 }: { points: LossPoint[]; width?: number; height?: number }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    if (!el.current) return;
    plot.current = new uPlot(
      {
        width,
        height,
        scales: { x: { time: false } },
        axes: [{ label: 'step' }, { label: 'loss' }],
        series: [
          { label: 'step' },
          { label: 'training', stroke: '#2f6fde', width: 2, spanGaps: true },
          { label: 'validation', stroke: '#e08a00', width: 2, spanGaps: true, points: { show: true, size: 5 } },
        ],
        legend: { show: true, live: false },
      },
      [[], [], []],
      el.current,
    );
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [width, height]);

  useEffect(() => {
    const steps = points.map((p) => p.step);
    const train = points.map((p) => p.train_loss ?? null);
    const valid = points.map((p) => p.valid_loss ?? null);
    plot.current?.setData([steps, train, valid] as uPlot.AlignedData);
  }, [points]);

  return <div className="loss-chart" ref={el} data-points={points.length} />;
}
