// A modal window on the native <dialog>: focus moves in and is kept there, Escape closes it, and
// focus returns to where it was — what a keyboard user needs, without a library.
import { useEffect, useRef, useState, type ReactNode } from 'react';

export function Modal({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current!;
    const before = document.activeElement as HTMLElement | null;
    dialog.showModal();
    return () => {
      dialog.close();
      before?.focus?.();
    };
  }, []);
  return (
    <dialog ref={ref} className={`modal ${wide ? 'wide' : ''}`} aria-label={title} onCancel={(e) => (e.preventDefault(), onClose())}>
      <header className="modal-head">
        <h2>{title}</h2>
        <button className="link" onClick={onClose} aria-label={`Close ${title}`}>
          ✕
        </button>
      </header>
      <div className="modal-body">{children}</div>
    </dialog>
  );
}

export interface ConfirmRequest {
  title: string;
  message: string;
  /** The buttons, the first being the default action; each resolves the request with its value. */
  choices: Array<{ label: string; value: string; danger?: boolean }>;
}

/** An in-page confirm(): `ask` resolves with the chosen value, or 'cancel'. */
export function useConfirm(): [(request: ConfirmRequest) => Promise<string>, ReactNode] {
  const [pending, setPending] = useState<(ConfirmRequest & { resolve: (v: string) => void }) | null>(null);
  const ask = (request: ConfirmRequest) => new Promise<string>((resolve) => setPending({ ...request, resolve }));
  const answer = (value: string) => {
    pending?.resolve(value);
    setPending(null);
  };
  const node = pending && (
    <Modal title={pending.title} onClose={() => answer('cancel')}>
      <p>{pending.message}</p>
      <div className="actions">
        {pending.choices.map((c, i) => (
          <button key={c.value} className={c.danger ? 'danger' : i === 0 ? 'primary' : ''} autoFocus={i === 0} onClick={() => answer(c.value)}>
            {c.label}
          </button>
        ))}
        <button onClick={() => answer('cancel')}>Cancel</button>
      </div>
    </Modal>
  );
  return [ask, node];
}
