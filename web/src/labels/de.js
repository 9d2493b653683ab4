// The prompt's built-in labels in this language (web/src/ui.js, KEYS), a chunk of its own:
// web/dist/loopwise-labels-de.js, loaded only by a page that needs them.
export default 'Teilen|Link kopieren|Nicht jetzt|Schließen|Link kopiert.|Diesen Link kopieren:|E-Mail|LinkedIn|X|WhatsApp';
