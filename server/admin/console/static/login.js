// The login page: posts the credentials to /api/login (JSON, same origin) and opens the console.
'use strict';
document.getElementById('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const error = document.getElementById('error');
  error.textContent = '';
  const button = document.getElementById('submit');
  button.disabled = true;
  try {
    const r = await fetch('/api/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: document.getElementById('user').value, password: document.getElementById('password').value }),
    });
    if (r.ok) {
      location.assign('/');
      return;
    }
    const body = await r.json().catch(() => ({}));
    error.textContent = body.error || `login refused (${r.status})`;
  } catch (e) {
    error.textContent = `cannot reach the appliance: ${e.message}`;
  } finally {
    button.disabled = false;
  }
});
