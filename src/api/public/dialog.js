// Confirmations for actions that change processes or the engine: a modal <dialog> that names what
// will happen (and how many processes, for bulk actions). Escape or "Cancel" declines; focus goes
// back to the button that asked.
import { el } from './forms.js';

/**
 * Asks `question` (a title and the lines that say what will happen); resolves true when the user
 * confirms with `confirmText`, false on Cancel or Escape.
 */
export function confirmAction({ title, lines, confirmText, danger = false }) {
  const opener = document.activeElement;
  const ok = el('button', {
    type: 'button',
    id: 'confirm-ok',
    class: danger ? 'danger' : 'primary',
    text: confirmText,
  });
  const cancel = el('button', { type: 'button', id: 'confirm-cancel', text: 'Cancel' });
  const dialog = el(
    'dialog',
    {
      id: 'confirm-dialog',
      'aria-labelledby': 'confirm-title',
      'aria-describedby': 'confirm-text',
    },
    [
      el('h2', { id: 'confirm-title', text: title }),
      el(
        'div',
        { id: 'confirm-text' },
        lines.map((l) => el('p', { text: l })),
      ),
      el('div', { class: 'actions' }, [cancel, ok]),
    ],
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    let answer = false;
    ok.addEventListener('click', () => {
      answer = true;
      dialog.close();
    });
    cancel.addEventListener('click', () => dialog.close());
    // Escape closes a modal dialog by itself ('cancel', then 'close').
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener && typeof opener.focus === 'function' && opener.isConnected) opener.focus();
      resolve(answer);
    });
    dialog.showModal();
    cancel.focus();
  });
}

/** "1 process" / "3 processes" (or any noun with its plural). */
export const count = (n, one, many = `${one}s`) => `${n.toLocaleString()} ${n === 1 ? one : many}`;
