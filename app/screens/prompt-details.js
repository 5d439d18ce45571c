/**
 * A prompt as people read it: the app that asks (its logo only over https, sent no Referer), the browser
 * and system, the place (masked IP, country name), the local time, and a CIBA request's binding message.
 * All of it is text the server sent, so it goes into text nodes only.
 */
import { h } from '../dom.js';
import { lang, t } from '../strings.js';

const httpsUrl = (value) => {
  try {
    return typeof value === 'string' && new URL(value).protocol === 'https:' ? value : null;
  } catch {
    return null;
  }
};

function countryName(code) {
  if (typeof code !== 'string' || !/^[A-Z]{2}$/.test(code)) return null;
  try {
    return new Intl.DisplayNames([lang], { type: 'region' }).of(code) ?? code;
  } catch {
    return code;
  }
}

export const localTime = (iso) =>
  new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));

const browserLine = (p) => (p.browser && p.os ? t('browserOn', { browser: p.browser, os: p.os }) : p.browser || p.os || null);

const placeLine = (p) => [p.place?.ip, countryName(p.place?.country)].filter(Boolean).join(' · ') || null;

/** The app's name, after its logo when it has one over https. */
export function clientLine(client) {
  const logo = httpsUrl(client?.logoUrl);
  return h('span', { class: 'client' },
    logo ? h('img', { src: logo, alt: '', referrerpolicy: 'no-referrer', class: 'client-logo', width: 32, height: 32 }) : null,
    client?.name ?? '');
}

/** The facts of a prompt as a description list. */
export function promptDetails(p) {
  const rows = [
    [t('app'), clientLine(p.client)],
    [t('browser'), browserLine(p)],
    [t('place'), placeLine(p)],
    [t('time'), p.createdAt ? localTime(p.createdAt) : null],
    [t('message'), p.kind === 'ciba' && p.bindingMessage ? p.bindingMessage : null],
  ].filter(([, value]) => value);
  return h('dl', { class: 'facts' }, rows.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
}

/** One line for the home screen's list. */
export function promptSummary(p) {
  const what = p.kind === 'test' ? t('testHeading') : p.kind === 'ciba' ? t('cibaLead', { client: p.client?.name ?? '' }) : t('signInLead', { client: p.client?.name ?? '' });
  return h('div', {}, h('strong', {}, what), h('p', { class: 'meta' }, [browserLine(p), placeLine(p)].filter(Boolean).join(' · ')));
}
