/**
 * The pair screen (`/app/pair`, the code in the fragment `#code=ABCD-EFGH` or typed). Pairing, in order:
 * ask for notification permission (first, while the tap still counts as the person's gesture), read the
 * server's VAPID key, make the device key, subscribe to push where the browser can and may (else pair
 * without a subscription: an "open the app" device, and say why), then POST /app/api/pair signed by the
 * new key. The home screen then asks the person to approve the test prompt.
 */
import { ApiError, getConfig, pair } from '../api.js';
import { createDevice, forgetDevice, loadDevice, updateDevice } from '../device.js';
import { alertLine, field, h, setAlert, show } from '../dom.js';
import { errorText } from '../errors.js';
import { link, navigate } from '../nav.js';
import { pushAvailable, subscribe, unsubscribe } from '../push.js';
import { t } from '../strings.js';
import { defaultDeviceName, isAppleMobile, isStandalone } from '../user-agent.js';

const NAME_MAX = 64;

/** The code from `#code=…`, and the fragment removed so the code stays out of the history. */
function codeFromFragment() {
  const code = new URLSearchParams(location.hash.slice(1)).get('code') ?? '';
  if (location.hash) history.replaceState(history.state, '', location.pathname);
  return code;
}

/** The code as the account page shows it (ABCD-EFGH), or null when it cannot be one (8 letters or digits). */
export function normaliseCode(typed) {
  const plain = typed.replace(/[\s-]+/g, '').toUpperCase();
  return /^[0-9A-Z]{8}$/.test(plain) ? `${plain.slice(0, 4)}-${plain.slice(4)}` : null;
}

/** Asks for permission to notify, where push is possible at all: 'granted', 'denied', 'default' or 'unavailable'. */
function askPermission() {
  if (!pushAvailable()) return Promise.resolve('unavailable');
  return Notification.requestPermission().catch(() => 'default');
}

/** The subscription to send (or null) and, when there is none, why, in words. */
async function trySubscribe(app, permission, vapidPublicKey) {
  if (permission === 'unavailable' || !vapidPublicKey) {
    return { subscription: null, note: isAppleMobile() && !isStandalone() ? t('noPushIos') : t('noPush') };
  }
  if (permission !== 'granted') return { subscription: null, note: t('pushRefused') };
  try {
    const registration = await app.registration();
    if (!registration) return { subscription: null, note: t('noPush') };
    return { subscription: (await subscribe(registration, vapidPublicKey)).toJSON(), note: null };
  } catch (err) {
    return { subscription: null, note: t('pushFailed', { reason: err instanceof Error ? err.message : String(err) }) };
  }
}

/**
 * POST /app/api/pair; when the server refuses the subscription (`bad_subscription`: a push service it does
 * not send to), pairs again without one, which the code survives (the server checks all else first).
 */
async function pairWith(app, device, code, subscribed) {
  try {
    return { ...subscribed, answer: await pair(device, code, subscribed.subscription) };
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'bad_subscription' || !subscribed.subscription) throw err;
    await unsubscribe(await app.registration()).catch(() => {});
    const note = t('pushFailed', { reason: t('pushServiceRefused') });
    return { subscription: null, note, answer: await pair(device, code, null) };
  }
}

async function pairDevice(app, code, name, permission) {
  const config = await getConfig();
  const device = await createDevice(name);
  try {
    const { subscription, note, answer } = await pairWith(app, device, code, await trySubscribe(app, permission, config.vapidPublicKey));
    const paired = answer.device;
    await updateDevice({
      deviceId: paired.id, name: paired.name ?? name, state: paired.state ?? 'pairing',
      vapidPublicKey: subscription ? config.vapidPublicKey : null, productName: config.productName ?? null,
    });
    return note;
  } catch (err) {
    await forgetDevice(); // a key the server does not know is of no use; the next try makes a new one
    throw err;
  }
}

function alreadyPaired(device) {
  show(h('h1', {}, t('pairHeading')), h('p', {}, t('alreadyPaired', { name: device.name })), h('p', { class: 'links' }, link('/app/', t('back'))));
}

export async function pairScreen(app) {
  const fromLink = codeFromFragment();
  const device = await loadDevice();
  if (device?.deviceId) return alreadyPaired(device);
  const status = alertLine('pair-error');
  const submit = h('button', { type: 'submit' }, t('pairButton'));
  const progress = h('p', { class: 'muted', role: 'status' });
  const form = h('form', { novalidate: true },
    field({ id: 'code', label: t('code'), hint: t('codeHint'), type: 'text', value: fromLink, autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', required: true }),
    field({ id: 'name', label: t('deviceName'), hint: t('deviceNameHint'), type: 'text', value: defaultDeviceName(), maxlength: NAME_MAX, autocomplete: 'off', required: true }),
    status, submit, progress);
  show(h('h1', {}, t('pairHeading')), h('p', { class: 'lead' }, t('pairLead')), form);
  const [codeInput, nameInput] = [form.querySelector('#code'), form.querySelector('#name')];

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const code = normaliseCode(codeInput.value);
    const name = nameInput.value.trim().slice(0, NAME_MAX);
    const invalid = !codeInput.value.trim() ? [codeInput, t('codeRequired')] : !code ? [codeInput, t('codeInvalid')] : !name ? [nameInput, t('nameRequired')] : null;
    for (const input of [codeInput, nameInput]) input.removeAttribute('aria-invalid');
    if (invalid) {
      invalid[0].setAttribute('aria-invalid', 'true');
      setAlert(status, invalid[1]);
      return invalid[0].focus();
    }
    const permission = askPermission(); // before any await: the browser needs the tap for its question
    setAlert(status, '');
    submit.disabled = true;
    progress.textContent = t('pairing');
    try {
      const note = await pairDevice(app, code, name, await permission);
      navigate('/app/', { notice: note }, { replace: true });
    } catch (err) {
      setAlert(status, errorText(err));
      progress.textContent = '';
      submit.disabled = false;
    }
  });
}
