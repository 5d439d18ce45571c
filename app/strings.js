/**
 * The app's texts in English and German (Latchkey's languages; the German is formal, as locales/de.json),
 * picked from the browser's preferred languages. `t(key, values)` fills `{name}` placeholders; `tn` picks
 * the plural form for a count. Used by the page and by the service worker's notifications.
 */

const en = {
  title: 'Latchkey',
  loading: 'Loading…',
  back: 'Back to the app',
  // Home
  notPairedHeading: 'This app is not paired yet',
  notPairedLead: 'Pair this phone with your account to approve sign-ins here.',
  notPairedHow: 'On a computer, open your account page, go to “Password & security” → “Mobile app prompts” and choose to add a phone. Then open the link or scan the code it shows with this phone, or type the code here.',
  haveCode: 'I have a pairing code',
  pairingHeading: 'Approve the test prompt to finish',
  pairingLead: 'A test prompt is on its way to this phone. Approve it to finish pairing.',
  stateActive: 'Sign-in prompts arrive as notifications.',
  stateOpenApp: 'Sign-in prompts show up while this app is open.',
  statePairing: 'Waiting for you to approve the test prompt.',
  stateOther: 'State: {state}',
  waiting: 'Waiting for you',
  nothingWaiting: 'Nothing is waiting for you. Prompts show up here while this app is open.',
  review: 'Review',
  turnOnNotifications: 'Turn on notifications',
  notificationsOn: 'Notifications are on.',
  notificationsRefused: 'Notifications are not allowed for this app. Allow them in your browser’s settings for this site, then try again.',
  notificationsUnavailable: 'This browser cannot show notifications from this app.',
  notificationsFailed: 'Notifications could not be set up ({reason}).',
  signOut: 'Sign out of this app',
  signOutConfirm: 'Sign out? This phone will no longer get sign-in prompts until you pair it again.',
  signOutYes: 'Sign out',
  signOutNo: 'Keep it',
  signedOut: 'You signed out of this app. Its key was deleted from this phone.',
  removed: 'This phone is no longer paired with your account (it was removed, or signed out).',
  // Pair
  pairHeading: 'Pair this phone',
  pairLead: 'Sign-in prompts for your account will come to this phone.',
  code: 'Pairing code',
  codeHint: 'The code your account page shows, such as ABCD-EFGH.',
  deviceName: 'Name of this phone',
  deviceNameHint: 'So you recognise it on your account page.',
  pairButton: 'Pair this phone',
  pairing: 'Pairing…',
  alreadyPaired: 'This app is already paired as “{name}”. To pair it with another account, sign out of this app first.',
  codeRequired: 'Enter the pairing code.',
  codeInvalid: 'A pairing code has 8 letters and digits, such as ABCD-EFGH.',
  nameRequired: 'Enter a name for this phone.',
  noPush: 'This browser cannot show notifications from this app, so it was paired without them: prompts show up while the app is open.',
  noPushIos: 'To get notifications on an iPhone or iPad, add this app to your Home Screen first (Share → Add to Home Screen), and pair from there.',
  pushRefused: 'Notifications are not allowed, so this phone was paired without them: prompts show up while the app is open. You can turn them on later.',
  pushFailed: 'Notifications could not be set up ({reason}), so this phone was paired without them: prompts show up while the app is open.',
  pushServiceRefused: 'Latchkey does not send to this browser’s push service',
  deviceOn: '{browser} on {os}',
  // Prompt
  signInHeading: 'Are you trying to sign in?',
  testHeading: 'Test prompt',
  testLead: 'This is the test prompt of your pairing. Type the number the account page shows and approve it to start getting sign-in prompts on this phone.',
  cibaHeading: 'Approve this request?',
  signInLead: 'Someone is signing in to {client} with your account.',
  cibaLead: '{client} asks you to approve a request.',
  app: 'App',
  browser: 'Browser',
  browserOn: '{browser} on {os}',
  place: 'Place',
  time: 'Time',
  message: 'Message',
  expiresIn: 'Expires in {seconds} s',
  number: 'Enter the number shown on the sign-in screen',
  numberPairing: 'Enter the number shown on the account page',
  approve: 'Approve',
  cancel: 'Cancel',
  notMe: 'This wasn’t me',
  sending: 'Sending…',
  promptGone: 'This prompt can’t be answered',
  approvedHeading: 'Approved',
  deniedHeading: 'Not approved',
  approved: 'Approved. You can go back to your computer.',
  approvedTest: 'Approved. This phone will now get your sign-in prompts.',
  cancelled: 'Cancelled. The sign-in was not approved.',
  deniedNotMe: 'Thank you. The sign-in was blocked, and prompts to your account are paused for an hour. If you did not start it, someone may know your password: change it on your account page.',
  // Errors, by the server's codes
  'error.number_required': 'Enter the number shown on the sign-in screen.',
  'error.wrong_number': { one: 'That is not the number on the sign-in screen. 1 attempt left.', other: 'That is not the number on the sign-in screen. {count} attempts left.' },
  'error.prompt_ended': 'That number was wrong too often, so this sign-in was stopped. Start again on your computer.',
  'error.unknown_prompt': 'This prompt is no longer there: it was answered, replaced by a newer one, or it expired.',
  'error.already_answered': 'This prompt was already answered.',
  'error.expired': 'This prompt expired. Start the sign-in again on your computer.',
  'error.too_many_attempts': 'Too many attempts. Wait a while, then try again.',
  'error.unknown_code': 'That pairing code is not valid. It may have expired (codes last 5 minutes) or been used: get a new one on your account page.',
  'error.invalid_request': 'The request was not valid. Check what you entered and try again.',
  'error.already_paired': 'This phone’s key is already paired. Sign out of this app, then pair again.',
  'error.stale_time': 'This phone’s clock is more than a minute off. Set it to the right time, then try again.',
  'error.unknown_device': 'This phone is no longer paired with your account.',
  'error.network': 'Latchkey cannot be reached. Check your connection and try again.',
  'error.other': 'Something went wrong ({code}). Try again.',
  'error.storage': 'This browser does not let the app keep its key (in a private window, for instance). Open it in a normal window.',
  // Notifications (sw.js)
  notifySignIn: 'Are you trying to sign in?',
  notifyTest: 'Test prompt from Latchkey',
  notifyBody: 'Open to review and answer.',
  notifyUnknown: 'Open Latchkey to check for prompts.',
};

const de = {
  title: 'Latchkey',
  loading: 'Wird geladen …',
  back: 'Zurück zur App',
  notPairedHeading: 'Diese App ist noch nicht gekoppelt',
  notPairedLead: 'Koppeln Sie dieses Telefon mit Ihrem Konto, um Anmeldungen hier zu bestätigen.',
  notPairedHow: 'Öffnen Sie auf einem Computer Ihre Kontoseite, gehen Sie zu „Passwort & Sicherheit“ → „Anmeldebestätigung per App“ und fügen Sie ein Telefon hinzu. Öffnen Sie dann den angezeigten Link oder scannen Sie den Code mit diesem Telefon, oder geben Sie den Code hier ein.',
  haveCode: 'Ich habe einen Kopplungscode',
  pairingHeading: 'Bestätigen Sie die Testanfrage, um abzuschließen',
  pairingLead: 'Eine Testanfrage ist unterwegs zu diesem Telefon. Bestätigen Sie sie, um die Kopplung abzuschließen.',
  stateActive: 'Anmeldeanfragen kommen als Benachrichtigungen.',
  stateOpenApp: 'Anmeldeanfragen erscheinen, solange diese App geöffnet ist.',
  statePairing: 'Wartet darauf, dass Sie die Testanfrage bestätigen.',
  stateOther: 'Zustand: {state}',
  waiting: 'Wartet auf Sie',
  nothingWaiting: 'Nichts wartet auf Sie. Anfragen erscheinen hier, solange diese App geöffnet ist.',
  review: 'Ansehen',
  turnOnNotifications: 'Benachrichtigungen einschalten',
  notificationsOn: 'Benachrichtigungen sind eingeschaltet.',
  notificationsRefused: 'Benachrichtigungen sind für diese App nicht erlaubt. Erlauben Sie sie in den Browser-Einstellungen für diese Website und versuchen Sie es erneut.',
  notificationsUnavailable: 'Dieser Browser kann keine Benachrichtigungen dieser App anzeigen.',
  notificationsFailed: 'Benachrichtigungen konnten nicht eingerichtet werden ({reason}).',
  signOut: 'Von dieser App abmelden',
  signOutConfirm: 'Abmelden? Dieses Telefon erhält dann keine Anmeldeanfragen mehr, bis Sie es erneut koppeln.',
  signOutYes: 'Abmelden',
  signOutNo: 'Behalten',
  signedOut: 'Sie haben sich von dieser App abgemeldet. Ihr Schlüssel wurde von diesem Telefon gelöscht.',
  removed: 'Dieses Telefon ist nicht mehr mit Ihrem Konto gekoppelt (es wurde entfernt oder abgemeldet).',
  pairHeading: 'Dieses Telefon koppeln',
  pairLead: 'Anmeldeanfragen für Ihr Konto kommen dann auf dieses Telefon.',
  code: 'Kopplungscode',
  codeHint: 'Der Code, den Ihre Kontoseite zeigt, etwa ABCD-EFGH.',
  deviceName: 'Name dieses Telefons',
  deviceNameHint: 'Damit Sie es auf Ihrer Kontoseite wiedererkennen.',
  pairButton: 'Dieses Telefon koppeln',
  pairing: 'Wird gekoppelt …',
  alreadyPaired: 'Diese App ist bereits als „{name}“ gekoppelt. Um sie mit einem anderen Konto zu koppeln, melden Sie sich zuerst von dieser App ab.',
  codeRequired: 'Geben Sie den Kopplungscode ein.',
  codeInvalid: 'Ein Kopplungscode hat 8 Buchstaben und Ziffern, etwa ABCD-EFGH.',
  nameRequired: 'Geben Sie einen Namen für dieses Telefon ein.',
  noPush: 'Dieser Browser kann keine Benachrichtigungen dieser App anzeigen, daher wurde es ohne sie gekoppelt: Anfragen erscheinen, solange die App geöffnet ist.',
  noPushIos: 'Um auf einem iPhone oder iPad Benachrichtigungen zu erhalten, legen Sie diese App zuerst auf den Home-Bildschirm (Teilen → Zum Home-Bildschirm) und koppeln Sie von dort.',
  pushRefused: 'Benachrichtigungen sind nicht erlaubt, daher wurde dieses Telefon ohne sie gekoppelt: Anfragen erscheinen, solange die App geöffnet ist. Sie können sie später einschalten.',
  pushFailed: 'Benachrichtigungen konnten nicht eingerichtet werden ({reason}), daher wurde dieses Telefon ohne sie gekoppelt: Anfragen erscheinen, solange die App geöffnet ist.',
  pushServiceRefused: 'Latchkey sendet nicht an den Push-Dienst dieses Browsers',
  deviceOn: '{browser} auf {os}',
  signInHeading: 'Versuchen Sie gerade, sich anzumelden?',
  testHeading: 'Testanfrage',
  testLead: 'Dies ist die Testanfrage Ihrer Kopplung. Geben Sie die Zahl ein, die die Kontoseite zeigt, und bestätigen Sie, um Anmeldeanfragen auf diesem Telefon zu erhalten.',
  cibaHeading: 'Diese Anfrage bestätigen?',
  signInLead: 'Jemand meldet sich mit Ihrem Konto bei {client} an.',
  cibaLead: '{client} bittet Sie, eine Anfrage zu bestätigen.',
  app: 'App',
  browser: 'Browser',
  browserOn: '{browser} auf {os}',
  place: 'Ort',
  time: 'Zeit',
  message: 'Nachricht',
  expiresIn: 'Läuft in {seconds} s ab',
  number: 'Geben Sie die Zahl ein, die auf dem Anmeldebildschirm steht',
  numberPairing: 'Geben Sie die Zahl ein, die auf der Kontoseite steht',
  approve: 'Bestätigen',
  cancel: 'Abbrechen',
  notMe: 'Das war ich nicht',
  sending: 'Wird gesendet …',
  promptGone: 'Diese Anfrage kann nicht beantwortet werden',
  approvedHeading: 'Bestätigt',
  deniedHeading: 'Nicht bestätigt',
  approved: 'Bestätigt. Sie können zu Ihrem Computer zurückkehren.',
  approvedTest: 'Bestätigt. Dieses Telefon erhält jetzt Ihre Anmeldeanfragen.',
  cancelled: 'Abgebrochen. Die Anmeldung wurde nicht bestätigt.',
  deniedNotMe: 'Danke. Die Anmeldung wurde blockiert, und Anfragen an Ihr Konto sind für eine Stunde pausiert. Wenn Sie sie nicht gestartet haben, kennt vielleicht jemand Ihr Passwort: Ändern Sie es auf Ihrer Kontoseite.',
  'error.number_required': 'Geben Sie die Zahl ein, die auf dem Anmeldebildschirm steht.',
  'error.wrong_number': { one: 'Das ist nicht die Zahl auf dem Anmeldebildschirm. Noch 1 Versuch.', other: 'Das ist nicht die Zahl auf dem Anmeldebildschirm. Noch {count} Versuche.' },
  'error.prompt_ended': 'Die Zahl war zu oft falsch, daher wurde diese Anmeldung beendet. Beginnen Sie auf Ihrem Computer erneut.',
  'error.unknown_prompt': 'Diese Anfrage gibt es nicht mehr: Sie wurde beantwortet, durch eine neuere ersetzt oder ist abgelaufen.',
  'error.already_answered': 'Diese Anfrage wurde bereits beantwortet.',
  'error.expired': 'Diese Anfrage ist abgelaufen. Beginnen Sie die Anmeldung auf Ihrem Computer erneut.',
  'error.too_many_attempts': 'Zu viele Versuche. Warten Sie eine Weile und versuchen Sie es dann erneut.',
  'error.unknown_code': 'Dieser Kopplungscode ist nicht gültig. Vielleicht ist er abgelaufen (Codes gelten 5 Minuten) oder wurde schon benutzt: Holen Sie sich auf Ihrer Kontoseite einen neuen.',
  'error.invalid_request': 'Die Anfrage war nicht gültig. Prüfen Sie Ihre Eingaben und versuchen Sie es erneut.',
  'error.already_paired': 'Der Schlüssel dieses Telefons ist bereits gekoppelt. Melden Sie sich von dieser App ab und koppeln Sie erneut.',
  'error.stale_time': 'Die Uhr dieses Telefons geht mehr als eine Minute falsch. Stellen Sie die richtige Zeit ein und versuchen Sie es erneut.',
  'error.unknown_device': 'Dieses Telefon ist nicht mehr mit Ihrem Konto gekoppelt.',
  'error.network': 'Latchkey ist nicht erreichbar. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.',
  'error.other': 'Etwas ist schiefgegangen ({code}). Versuchen Sie es erneut.',
  'error.storage': 'Dieser Browser lässt die App ihren Schlüssel nicht speichern (etwa in einem privaten Fenster). Öffnen Sie sie in einem normalen Fenster.',
  notifySignIn: 'Versuchen Sie gerade, sich anzumelden?',
  notifyTest: 'Testanfrage von Latchkey',
  notifyBody: 'Öffnen, um sie anzusehen und zu beantworten.',
  notifyUnknown: 'Öffnen Sie Latchkey, um nach Anfragen zu sehen.',
};

export const TEXTS = { en, de };

/** The first of the browser's languages that the app speaks, else English. */
export function pickLanguage(languages) {
  for (const tag of languages ?? []) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (Object.hasOwn(TEXTS, base)) return base;
  }
  return 'en';
}

export const lang = pickLanguage(globalThis.navigator?.languages ?? [globalThis.navigator?.language]);

const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ''));

/** The text of `key` in the app's language (English when missing), placeholders filled. */
export function t(key, values = {}) {
  const text = TEXTS[lang][key] ?? en[key] ?? key;
  return fill(typeof text === 'string' ? text : text.other, values);
}

/** A text with plural forms (`{ one, other }`) for `count`, which fills `{count}`. */
export function tn(key, count, values = {}) {
  const forms = TEXTS[lang][key] ?? en[key];
  const form = forms[new Intl.PluralRules(lang).select(count)] ?? forms.other;
  return fill(form, { ...values, count });
}

/** Whether the app has a text for `key`. */
export const has = (key) => Object.hasOwn(en, key);
