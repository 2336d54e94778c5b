// Signing in, when the API requires a token (API_TOKENS or OIDC_ISSUER): a 401 from any call, or
// the live connection refused `unauthorized`, shows the sign-in panel in place of the page. The
// token (a static API token, or an OIDC access token pasted from the identity provider) is tried
// once, then kept in sessionStorage, and the page shown again. Who it names is the server's to
// know (static tokens are opaque): the header says "signed in" only, with "Sign out".
import { el } from './forms.js';
import { api, errorLine, onRefused, reconnect, storeToken, storedToken, view } from './page.js';

const signedIn = document.getElementById('signed-in');
const signOut = document.getElementById('sign-out');

function showSession() {
  const token = storedToken();
  signedIn.hidden = !token;
  signOut.hidden = !token;
}

/**
 * Sets up the panel and the header's session. `leave()` ends the page shown when the panel
 * takes its place; `done()` shows the current view again after a sign-in.
 */
export function setUpSignIn({ leave, done }) {
  /** The panel's message line while it is shown. */
  let shown;

  function showPanel(message) {
    // The page asked for (even one loading while the panel shows) would replace it.
    leave();
    if (shown?.isConnected) {
      // Already asked (a 401 and the socket's refusal come together): keep what was typed.
      if (message) shown.textContent = message;
      return;
    }
    const note = el('p', { id: 'sign-in-message', role: 'status', text: message });
    const input = el('input', {
      type: 'password',
      id: 'sign-in-token',
      name: 'token',
      autocomplete: 'off',
      spellcheck: 'false',
      required: true,
    });
    const error = el('p', { id: 'sign-in-error', class: 'error', role: 'alert' });
    const button = el('button', { type: 'submit', class: 'primary', text: 'Sign in' });
    const form = el('form', { id: 'sign-in-form' }, [
      el('label', { for: 'sign-in-token', text: 'API token' }),
      input,
      el('div', { class: 'actions' }, [button]),
      error,
    ]);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      button.disabled = true;
      error.textContent = '';
      try {
        // Tried before it is kept: a wrong one (401) or too many (429) shows here.
        await api('GET', '/api/workflows', undefined, { token });
      } catch (err) {
        error.textContent = errorLine(err);
        button.disabled = false;
        return;
      }
      storeToken(token);
      showSession();
      reconnect();
      shown = undefined;
      done();
    });
    shown = note;
    view.replaceChildren(
      el('section', { id: 'sign-in', class: 'sign-in' }, [
        el('h1', { text: 'Sign in' }),
        el('p', {
          class: 'muted',
          text: 'This API requires a token: a static API token, or an access token from the identity provider.',
        }),
        note,
        form,
      ]),
    );
    input.focus();
  }

  onRefused((token) => {
    // A token refused (expired, or no longer configured) is of no further use, nor the live
    // connection it opened.
    if (token) {
      storeToken(null);
      reconnect();
    }
    showSession();
    showPanel(token ? 'The token was refused: sign in again.' : '');
  });
  signOut.addEventListener('click', (e) => {
    e.preventDefault();
    storeToken(null);
    showSession();
    showPanel('Signed out.');
    // The live connection goes on only with a token.
    reconnect();
  });
  showSession();
}
