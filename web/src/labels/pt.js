// The prompt's built-in labels in this language (web/src/ui.js, KEYS), a chunk of its own:
// web/dist/loopwise-labels-pt.js, loaded only by a page that needs them.
export default 'Compartilhar|Copiar link|Agora não|Fechar|Link copiado.|Copie este link:|E-mail|LinkedIn|X|WhatsApp';
