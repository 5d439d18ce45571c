// The sign-in waiting on a phone's prompt (views/factors/push/prompt.njk): asks for the prompt's status every
// 2 s; once it is answered (approved or denied) the form is sent, as "Continue" would; once it expired the
// page says so and offers "Send again". Without this script "Continue" does the same.
(() => {
  const box = document.getElementById('push-wait');
  const form = document.getElementById('push-form');
  if (!box || !form) return;
  const status = document.getElementById('push-wait-status');
  const expired = document.getElementById('push-expired');
  const url = box.dataset.status;
  if (status) status.textContent = status.dataset.waiting || '';
  let done = false;
  async function check() {
    if (done) return;
    try {
      const res = await fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
      if (res.ok) {
        const { status: state } = await res.json();
        if (state === 'approved' || state === 'denied') {
          done = true;
          form.submit();
          return;
        }
        if (state === 'expired') {
          done = true;
          if (status) status.textContent = '';
          const number = document.getElementById('push-number');
          if (number) number.hidden = true;
          form.hidden = true;
          if (expired) expired.hidden = false;
          return;
        }
      }
    } catch {
      // Offline for a moment: ask again at the next tick.
    }
    setTimeout(check, 2000);
  }
  setTimeout(check, 2000);
})();
