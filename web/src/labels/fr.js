// The prompt's built-in labels in this language (web/src/ui.js, KEYS), a chunk of its own:
// web/dist/loopwise-labels-fr.js, loaded only by a page that needs them.
export default 'Partager|Copier le lien|Plus tard|Fermer|Lien copié.|Copiez ce lien :|E-mail|LinkedIn|X|WhatsApp';
