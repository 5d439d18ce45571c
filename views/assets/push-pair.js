// Pairing a phone on the account page (views/factors/push/pair.njk): asks every 2 s how far the phone got
// (waiting, paired, confirmed, expired). Paired: "Now approve the test prompt on your phone". Confirmed: the
// enrolment form is sent, as "Continue" would. Expired: the code is dead, start again.
(() => {
  const box = document.getElementById('push-pair');
  const form = document.getElementById('push-pair-form');
  if (!box || !form) return;
  const status = document.getElementById('push-pair-status');
  const expired = document.getElementById('push-pair-expired');
  const url = box.dataset.status;
  const say = (key) => {
    if (status && status.textContent !== status.dataset[key]) status.textContent = status.dataset[key] || '';
  };
  say('waiting');
  let done = false;
  async function check() {
    if (done) return;
    try {
      const res = await fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
      if (res.ok) {
        const { state, number } = await res.json();
        if (state === 'paired') {
          say('paired');
          // The number the phone's test prompt asks for: typed there, it finishes the pairing.
          const box = document.getElementById('push-pair-number');
          const value = document.getElementById('push-pair-number-value');
          if (box && value && typeof number === 'string' && value.textContent !== number) {
            value.textContent = number;
            box.hidden = false;
          }
        }
        if (state === 'confirmed') {
          done = true;
          say('confirmed');
          form.submit();
          return;
        }
        if (state === 'expired') {
          done = true;
          if (status) status.textContent = '';
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
