// "Show password": a checkbox that switches its password field between hidden and plain text. The
// checkbox stays hidden when this script does not run; the form works the same without it.
for (const box of document.querySelectorAll('input[data-show-password]')) {
  const field = document.getElementById(box.dataset.showPassword);
  const label = box.closest('label');
  if (!field || !label) continue;
  label.hidden = false;
  box.addEventListener('change', () => {
    field.type = box.checked ? 'text' : 'password';
  });
  // Never submit or let the browser remember the password as plain text.
  field.form?.addEventListener('submit', () => {
    field.type = 'password';
  });
}
