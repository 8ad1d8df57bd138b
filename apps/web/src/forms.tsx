import { type FormEvent, type ReactNode, useId, useRef, useState } from 'react';
import { ApiError } from './api.ts';
import { ErrorBox, useAction } from './ui.tsx';

// The console's forms, one markup for every view: each control has its label, a submit runs the
// API call with the error shown beside the form in words, and a button that changes something
// irreversible asks first in a native modal dialog.

/** A form whose submit runs `action`; its error shows under it (`what` says what did not happen). */
export function Form({ label, submit, action, what, className = 'inline', children }: { label: string; submit: string; action: () => Promise<void>; what: string; className?: string; children: ReactNode }) {
  const a = useAction();
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void a.run(action);
  };
  return (
    <form className={className} onSubmit={onSubmit} aria-label={label}>
      {children}
      <button type="submit" className="primary" disabled={a.busy}>
        {submit}
      </button>
      <ErrorBox error={a.error} what={what} />
    </form>
  );
}

/** A labelled text input. */
export function Field({ id, label, value, onChange, required, placeholder, size, type = 'text' }: { id: string; label: string; value: string; onChange: (v: string) => void; required?: boolean; placeholder?: string; size?: number; type?: string }) {
  return (
    <div>
      <label htmlFor={id}>{label}</label>
      <input id={id} type={type} required={required} value={value} onChange={(e) => onChange(e.target.value)} placeholder={placeholder} size={size} />
    </div>
  );
}

/** A labelled select: `options` are [value, text] pairs. */
export function SelectField({ id, label, value, onChange, options }: { id: string; label: string; value: string; onChange: (v: string) => void; options: [string, string][] }) {
  return (
    <div>
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
        {options.map(([v, t]) => (
          <option key={v} value={v}>
            {t}
          </option>
        ))}
      </select>
    </div>
  );
}

/** A labelled checkbox. */
export function CheckField({ id, label, checked, onChange }: { id: string; label: ReactNode; checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <div className="check">
      <input id={id} type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} />
      <label htmlFor={id}>{label}</label>
    </div>
  );
}

/**
 * A button that asks first, in a modal dialog (focus stays inside; Escape cancels), then runs
 * `action`; the API's error is shown in the dialog in words.
 */
export function ConfirmButton({ label, title, children, confirmLabel, action, danger }: { label: string; title: string; children: ReactNode; confirmLabel: string; action: () => Promise<void>; danger?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  const [error, setError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await action();
      ref.current?.close();
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, 'client', String(e)));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className={danger ? 'danger' : undefined} onClick={() => ref.current?.showModal()}>
        {label}
      </button>
      <dialog ref={ref} aria-labelledby={id}>
        <h2 id={id}>{title}</h2>
        {children}
        <ErrorBox error={error} />
        <div className="actions">
          <button type="button" onClick={() => ref.current?.close()}>
            Cancel
          </button>
          <button type="button" className={danger ? 'danger' : 'primary'} disabled={busy} onClick={run}>
            {confirmLabel}
          </button>
        </div>
      </dialog>
    </>
  );
}
