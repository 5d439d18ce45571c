// Shows every <time datetime> in the viewer's own time zone. The server writes the time in UTC and says so
// ("3 Mar 2025, 14:05 UTC"), which is what a browser without JavaScript keeps showing; the UTC text stays
// as the element's tooltip.
const format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
  day: 'numeric', month: 'short', year: 'numeric', hour: 'numeric', minute: '2-digit', timeZoneName: 'short',
});
for (const time of document.querySelectorAll('time[datetime]')) {
  const when = new Date(time.getAttribute('datetime'));
  if (Number.isNaN(when.getTime())) continue;
  if (!time.title) time.title = time.textContent;
  time.textContent = format.format(when);
}
