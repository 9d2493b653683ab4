// The prompt's built-in labels in this language (web/src/ui.js, KEYS), a chunk of its own:
// web/dist/loopwise-labels-es.js, loaded only by a page that needs them.
export default 'Compartir|Copiar enlace|Ahora no|Cerrar|Enlace copiado.|Copia este enlace:|Correo|LinkedIn|X|WhatsApp';
