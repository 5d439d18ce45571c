// "Copy": copies the text of the element named by data-copy. Hidden when this script does not run.
for (const button of document.querySelectorAll('button[data-copy]')) {
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) continue;
  button.hidden = false;
  const label = button.textContent;
  button.addEventListener('click', async () => {
    const text = [...source.querySelectorAll('code')].map((c) => c.textContent).join('\n');
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = button.dataset.copied || '✓';
    } catch {
      button.textContent = label;
    }
  });
}
