// The drawing stays in view when the canvas changes size — a window resized, the run panel
// opening below it — by fitting it again, as "fit view" does. Not after the person has panned
// or zoomed by hand: a canvas that jumps away from where someone put it is worse than one that
// needs "fit view" pressed. Fitting (on purpose, or with that button) makes it follow again.
import { useReactFlow, useStore, type FitViewOptions } from '@xyflow/react';
import { useCallback, useEffect, useRef } from 'react';

/** How the canvas fits its drawing, everywhere it does: on load, on opening a workflow, on resize and with the button. */
export const FIT_OPTIONS: FitViewOptions = { maxZoom: 1.1, padding: 0.25 };

export interface AutoFit {
  /** Fits the drawing now, and again whenever the canvas changes size. */
  fit(): void;
  /** React Flow's onMoveStart: a move with an input event (drag, wheel, pinch) is the person's. */
  onMoveStart(event: MouseEvent | TouchEvent | null): void;
  /** The zoom buttons move the view without an input event, but by hand all the same. */
  movedByHand(): void;
  /** The fit-view button fitted the view: follow resizes again. */
  fitted(): void;
}

export function useAutoFit(): AutoFit {
  const { fitView } = useReactFlow();
  // The size React Flow measured its pane at: fitView uses it, so a fit after it changed fits the new size.
  const width = useStore((s) => s.width);
  const height = useStore((s) => s.height);
  const byHand = useRef(false);

  useEffect(() => {
    if (byHand.current || width === 0 || height === 0) return;
    void fitView(FIT_OPTIONS);
  }, [width, height, fitView]);

  const fit = useCallback(() => {
    byHand.current = false;
    void fitView(FIT_OPTIONS);
  }, [fitView]);
  const onMoveStart = useCallback((event: MouseEvent | TouchEvent | null) => {
    if (event) byHand.current = true;
  }, []);
  const movedByHand = useCallback(() => {
    byHand.current = true;
  }, []);
  const fitted = useCallback(() => {
    byHand.current = false;
  }, []);
  return { fit, onMoveStart, movedByHand, fitted };
}
