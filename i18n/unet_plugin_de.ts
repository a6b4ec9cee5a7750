<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de">
  <context>
    <name>UnetPlugin</name>
    <message>
      <source>The U-Net algorithms need PyTorch, which is not installed in QGIS's Python.</source>
      <translation>Die U-Net-Algorithmen benötigen PyTorch, das in QGIS' Python nicht installiert ist.</translation>
    </message>
    <message>
      <source>Install PyTorch…</source>
      <translation>PyTorch installieren…</translation>
    </message>
    <message>
      <source>Installing PyTorch for U-Net Segmentation</source>
      <translation>PyTorch für U-Net-Segmentierung wird installiert</translation>
    </message>
    <message>
      <source>Install PyTorch for U-Net Segmentation</source>
      <translation>PyTorch für U-Net-Segmentierung installieren</translation>
    </message>
    <message>
      <source>The plugin needs PyTorch. It is installed into a folder of the plugin inside your QGIS profile: no administrator rights are needed and QGIS's own Python is not changed.</source>
      <translation>Das Plugin benötigt PyTorch. Es wird in einen Ordner des Plugins in Ihrem QGIS-Profil installiert: Administratorrechte sind nicht nötig, und QGIS' eigenes Python bleibt unverändert.</translation>
    </message>
    <message>
      <source>Python</source>
      <translation>Python</translation>
    </message>
    <message>
      <source>Install folder</source>
      <translation>Installationsordner</translation>
    </message>
    <message>
      <source>CPU (works everywhere, about 200 MB)</source>
      <translation>CPU (läuft überall, etwa 200 MB)</translation>
    </message>
    <message>
      <source>CUDA for NVIDIA GPUs (several GB)</source>
      <translation>CUDA für NVIDIA-GPUs (mehrere GB)</translation>
    </message>
    <message>
      <source>Build</source>
      <translation>Variante</translation>
    </message>
    <message>
      <source>Internet (PyPI and download.pytorch.org)</source>
      <translation>Internet (PyPI und download.pytorch.org)</translation>
    </message>
    <message>
      <source>A folder of wheels (offline)</source>
      <translation>Ein Ordner mit Wheels (offline)</translation>
    </message>
    <message>
      <source>From</source>
      <translation>Quelle</translation>
    </message>
    <message>
      <source>Browse…</source>
      <translation>Durchsuchen…</translation>
    </message>
    <message>
      <source>Wheel folder</source>
      <translation>Wheel-Ordner</translation>
    </message>
    <message>
      <source>optional: your company's package index</source>
      <translation>optional: der Paketindex Ihrer Organisation</translation>
    </message>
    <message>
      <source>Index URL</source>
      <translation>Index-URL</translation>
    </message>
    <message>
      <source>Proxy</source>
      <translation>Proxy</translation>
    </message>
    <message>
      <source>Also onnxruntime and onnx (about 1.3× faster classification on a CPU, int8 where it draws the same map)</source>
      <translation>Auch onnxruntime und onnx (etwa 1,3× schnellere Klassifikation auf der CPU, int8 wo es dieselbe Karte ergibt)</translation>
    </message>
    <message>
      <source>Install</source>
      <translation>Installieren</translation>
    </message>
    <message>
      <source>Folder of wheels</source>
      <translation>Ordner mit Wheels</translation>
    </message>
    <message>
      <source>Installing… QGIS stays usable; this dialog may be closed (the task bar shows the progress).</source>
      <translation>Installation läuft… QGIS bleibt benutzbar; dieser Dialog darf geschlossen werden (die Taskleiste zeigt den Fortschritt).</translation>
    </message>
    <message>
      <source>PyTorch is installed and ready: the U-Net algorithms run now, no restart needed.</source>
      <translation>PyTorch ist installiert und bereit: Die U-Net-Algorithmen laufen jetzt, ohne Neustart.</translation>
    </message>
    <message>
      <source>choose the folder of wheels.</source>
      <translation>Wählen Sie den Ordner mit den Wheels.</translation>
    </message>
    <message>
      <source>No NVIDIA GPU found.</source>
      <translation>Keine NVIDIA-GPU gefunden.</translation>
    </message>
    <message>
      <source>PyTorch is installed. Restart QGIS to use it (an older {} is loaded in this session).</source>
      <translation>PyTorch ist installiert. Starten Sie QGIS neu, um es zu verwenden (in dieser Sitzung ist ein älteres {} geladen).</translation>
    </message>
    <message>
      <source>Not installed: {}</source>
      <translation>Nicht installiert: {}</translation>
    </message>
    <message>
      <source>NVIDIA GPU found: {}</source>
      <translation>NVIDIA-GPU gefunden: {}</translation>
    </message>
    <message>
      <source>Installed: {}. Installing again replaces it.</source>
      <translation>Installiert: {}. Eine neue Installation ersetzt sie.</translation>
    </message>
    <message>
      <source>Cannot install: {}</source>
      <translation>Installation nicht möglich: {}</translation>
    </message>
    <message>
      <source>Export Training Chips</source>
      <translation>Trainingschips exportieren</translation>
    </message>
    <message>
      <source>Cuts imagery and labels into georeferenced training chips for Train U-Net.

Labels are class polygons (with a class field of codes 1–254 or of class names) or a classified raster on any grid. A mask limits chips to the areas where labels are known. The output folder holds images/ and labels/ GeoTIFF chips, dataset.json (classes, pixel counts, band statistics, one entry per chip) and the files of Esri's 'Classified Tiles' format, so the folder also trains in ArcGIS. Label values: 0 background, 1–254 classes, 255 ignored (image nodata, outside the mask).</source>
      <translation>Schneidet Bilddaten und Labels in georeferenzierte Trainingschips für „U-Net trainieren“.

Labels sind Klassenpolygone (mit einem Klassenfeld aus Codes 1–254 oder Klassennamen) oder ein klassifiziertes Raster auf beliebigem Raster. Eine Maske beschränkt die Chips auf die Bereiche, in denen Labels bekannt sind. Der Ausgabeordner enthält GeoTIFF-Chips in images/ und labels/, dataset.json (Klassen, Pixelzahlen, Bandstatistiken, ein Eintrag je Chip) und die Dateien des Esri-Formats „Classified Tiles“, sodass der Ordner auch in ArcGIS trainiert. Labelwerte: 0 Hintergrund, 1–254 Klassen, 255 ignoriert (NoData im Bild, außerhalb der Maske).</translation>
    </message>
    <message>
      <source>Train U-Net</source>
      <translation>U-Net trainieren</translation>
    </message>
    <message>
      <source>Trains a U-Net with a ResNet encoder on a chip folder from Export Training Chips (or an Esri 'Classified Tiles' folder) and saves one model file (.pt) for Classify Raster.

A share of the chips, in spatial blocks apart from the training chips, is held out for validation. Each epoch logs the losses, accuracy and per-class IoU; the saved model is the epoch with the best validation mean IoU. Learning rate 0 finds a rate automatically. Canceling keeps the best model so far. The optional HTML report shows the curves, per-class scores, the confusion matrix and example predictions.

Polygons of several classes on a small share of the area, exported with UNLABELED=background and no MASK, are taken as samples: the land around them is labelled background although it holds the same classes, so background counts like one average class and validation scores the held-out polygons only (the log says so).</source>
      <translation>Trainiert ein U-Net mit ResNet-Encoder auf einem Chip-Ordner aus „Trainingschips exportieren“ (oder einem Esri-Ordner „Classified Tiles“) und speichert eine Modelldatei (.pt) für „Raster klassifizieren“.

Ein Teil der Chips wird in räumlichen Blöcken, getrennt von den Trainingschips, zur Validierung zurückgehalten. Jede Epoche protokolliert die Verluste, die Genauigkeit und den IoU je Klasse; gespeichert wird die Epoche mit dem besten mittleren Validierungs-IoU. Lernrate 0 findet eine Rate automatisch. Ein Abbruch behält das bisher beste Modell. Der optionale HTML-Bericht zeigt die Kurven, die Werte je Klasse, die Konfusionsmatrix und Beispielvorhersagen.

Polygone mehrerer Klassen auf einem kleinen Teil der Fläche, exportiert mit UNLABELED=background und ohne Maske, gelten als Stichproben: Das Land um sie herum ist als Hintergrund gelabelt, obwohl es dieselben Klassen enthält. Daher zählt der Hintergrund wie eine durchschnittliche Klasse, und die Validierung bewertet nur die zurückgehaltenen Polygone (das Protokoll sagt es).</translation>
    </message>
    <message>
      <source>Classify Raster</source>
      <translation>Raster klassifizieren</translation>
    </message>
    <message>
      <source>Classifies a raster of any size with a model from Train U-Net and writes a class raster (GeoTIFF, one byte per pixel, with colour table, class names and a .qml style beside it).

The raster is processed in overlapping tiles that are blended, so no seams show. The raster must have the bands the model was trained on, in the same order; its nodata becomes nodata (255) in the result. Optionally writes the probability of the chosen class.</source>
      <translation>Klassifiziert ein Raster beliebiger Größe mit einem Modell aus „U-Net trainieren“ und schreibt ein Klassenraster (GeoTIFF, ein Byte pro Pixel, mit Farbtabelle, Klassennamen und einem .qml-Stil daneben).

Das Raster wird in überlappenden Kacheln verarbeitet, die überblendet werden, sodass keine Nähte sichtbar sind. Das Raster muss die Bänder haben, mit denen das Modell trainiert wurde, in derselben Reihenfolge; seine NoData-Pixel werden im Ergebnis zu NoData (255). Optional wird die Wahrscheinlichkeit der gewählten Klasse geschrieben.</translation>
    </message>
    <message>
      <source>Assess Accuracy</source>
      <translation>Genauigkeit bewerten</translation>
    </message>
    <message>
      <source>How good is a class map? Compares a class raster (from Classify Raster, or any classified raster) with reference data: polygons with a class field (class names or codes, matched to the raster's class names and values) or a classified reference raster on any grid.

Writes a table with, per class, the reference and mapped pixels, producer's accuracy (recall), user's accuracy (precision), F1 and IoU, and optionally an HTML report with the confusion matrix, overall accuracy and Cohen's kappa. Pixels that are nodata in either raster do not count; reference classes the map does not know are an error that lists both.

With labelled sample points as the reference (from Create Accuracy Sample), the map's classes are the strata and the stratified estimators of Olofsson et al. (2014) run instead of pixel counting: the error matrix in proportions of area, overall, user's and producer's accuracy and the error-adjusted area of every class, each with a 95 % confidence interval (OUTPUT_AREAS).</source>
      <translation>Wie gut ist eine Klassenkarte? Vergleicht ein Klassenraster (aus „Raster klassifizieren“ oder ein beliebiges klassifiziertes Raster) mit Referenzdaten: Polygone mit einem Klassenfeld (Klassennamen oder Codes, zugeordnet zu den Klassennamen und Werten des Rasters) oder ein klassifiziertes Referenzraster auf beliebigem Raster.

Schreibt eine Tabelle mit Referenz- und kartierten Pixeln, Herstellergenauigkeit (Recall), Nutzergenauigkeit (Precision), F1 und IoU je Klasse sowie optional einen HTML-Bericht mit Konfusionsmatrix, Gesamtgenauigkeit und Cohens Kappa. Pixel, die in einem der Raster NoData sind, zählen nicht; Referenzklassen, die die Karte nicht kennt, sind ein Fehler, der beide Listen nennt.

Mit beschrifteten Stichprobenpunkten als Referenz (aus „Genauigkeitsstichprobe erstellen“) sind die Klassen der Karte die Schichten, und statt der Pixelzählung laufen die geschichteten Schätzer von Olofsson et al. (2014): die Fehlermatrix in Flächenanteilen, Gesamt-, Nutzer- und Herstellergenauigkeit und die fehlerbereinigte Fläche jeder Klasse, jeweils mit 95-%-Konfidenzintervall (OUTPUT_AREAS).</translation>
    </message>
    <message>
      <source>Create Accuracy Sample</source>
      <translation>Genauigkeitsstichprobe erstellen</translation>
    </message>
    <message>
      <source>A stratified random sample of points on a class map, for the good-practice accuracy assessment and area estimates of Olofsson et al. (2014): the map's classes are the strata.

Label each point's reference field (the class you see in imagery of higher resolution or in the field), then give the points to Assess Accuracy: it estimates every class's area with a 95 % confidence interval, and overall, user's and producer's accuracy. The sample size follows from the standard error you want for overall accuracy (eq. 13) unless you set it; the default allocation gives rare classes at least MIN_PER_CLASS points and the rest of the sample in proportion to area. Nodata is never sampled; the same SEED gives the same points.</source>
      <translation>Eine geschichtete Zufallsstichprobe von Punkten auf einer Klassenkarte, für die Genauigkeitsbewertung und Flächenschätzung nach guter Praxis (Olofsson et al. 2014): die Klassen der Karte sind die Schichten.

Tragen Sie für jeden Punkt die Referenzklasse ein (die Klasse, die Sie in höher aufgelösten Bildern oder im Gelände sehen), dann geben Sie die Punkte an „Genauigkeit bewerten“: es schätzt die Fläche jeder Klasse mit 95-%-Konfidenzintervall sowie Gesamt-, Nutzer- und Herstellergenauigkeit. Der Stichprobenumfang folgt aus dem gewünschten Standardfehler der Gesamtgenauigkeit (Gl. 13), sofern Sie ihn nicht festlegen; die Standardaufteilung gibt seltenen Klassen mindestens MIN_PER_CLASS Punkte und verteilt den Rest flächenproportional. NoData wird nie beprobt; derselbe SEED ergibt dieselben Punkte.</translation>
    </message>
    <message>
      <source>Suggest Areas to Label</source>
      <translation>Zu beschriftende Flächen vorschlagen</translation>
    </message>
    <message>
      <source>Where would new labels help the model most? Proposes square windows where the model is least sure of its map, ranked, for you to label next.

The raster is classified as Classify Raster does it; every candidate window is scored by the mean entropy of the class probabilities (0: sure, 1: every class equally likely). Windows touching areas already labelled (EXISTING_LABELS) or with little image are never proposed, and proposals do not overlap. The diverse strategy also spreads them over the map and over the predicted classes. Draw the polygons of the classes inside the windows (or fill in the class field of a window that is one class), export them with the windows as MASK and UNLABELED=ignore, and fine-tune with INIT_MODEL.</source>
      <translation>Wo würden neue Beschriftungen dem Modell am meisten helfen? Schlägt quadratische Fenster vor, in denen sich das Modell seiner Karte am wenigsten sicher ist, nach Rang geordnet, zum Beschriften als Nächstes.

Das Raster wird wie bei „Raster klassifizieren“ klassifiziert; jedes Kandidatenfenster wird nach der mittleren Entropie der Klassenwahrscheinlichkeiten bewertet (0: sicher, 1: alle Klassen gleich wahrscheinlich). Fenster, die bereits beschriftete Flächen (EXISTING_LABELS) berühren oder wenig Bild enthalten, werden nie vorgeschlagen, und Vorschläge überlappen sich nicht. Die Strategie diverse verteilt sie zudem über die Karte und die vorhergesagten Klassen. Zeichnen Sie die Polygone der Klassen in den Fenstern (oder füllen Sie das Klassenfeld eines Fensters aus, das eine einzige Klasse ist), exportieren Sie sie mit den Fenstern als MASK und UNLABELED=ignore und verfeinern Sie mit INIT_MODEL.</translation>
    </message>
    <message>
      <source>Input imagery</source>
      <translation>Eingabebild</translation>
    </message>
    <message>
      <source>The image to cut chips from, any data type and band count.</source>
      <translation>Das Bild, aus dem Chips geschnitten werden, mit beliebigem Datentyp und beliebiger Bandzahl.</translation>
    </message>
    <message>
      <source>Bands</source>
      <translation>Bänder</translation>
    </message>
    <message>
      <source>Bands to export, in this order. Empty: all bands.</source>
      <translation>Zu exportierende Bänder, in dieser Reihenfolge. Leer: alle Bänder.</translation>
    </message>
    <message>
      <source>Class polygons</source>
      <translation>Klassenpolygone</translation>
    </message>
    <message>
      <source>Polygons of the classes, in any CRS. Give these or a label raster.</source>
      <translation>Polygone der Klassen, in beliebigem KBS. Geben Sie diese oder ein Labelraster an.</translation>
    </message>
    <message>
      <source>Class field</source>
      <translation>Klassenfeld</translation>
    </message>
    <message>
      <source>Field with class codes 1–254 or class names. Empty: every polygon is class 1.</source>
      <translation>Feld mit Klassencodes 1–254 oder Klassennamen. Leer: jedes Polygon ist Klasse 1.</translation>
    </message>
    <message>
      <source>Label raster</source>
      <translation>Labelraster</translation>
    </message>
    <message>
      <source>A classified raster (values 1–254) instead of polygons, on any grid.</source>
      <translation>Ein klassifiziertes Raster (Werte 1–254) statt Polygonen, auf beliebigem Raster.</translation>
    </message>
    <message>
      <source>Labelled areas (mask)</source>
      <translation>Gelabelte Bereiche (Maske)</translation>
    </message>
    <message>
      <source>Polygons where labels are known. Chips are cut only there; pixels outside are ignored.</source>
      <translation>Polygone, in denen Labels bekannt sind. Chips werden nur dort geschnitten; Pixel außerhalb werden ignoriert.</translation>
    </message>
    <message>
      <source>Unlabelled pixels are</source>
      <translation>Nicht gelabelte Pixel sind</translation>
    </message>
    <message>
      <source>What pixels outside every label polygon mean: background (class 0) or unknown (ignored in training).</source>
      <translation>Was Pixel außerhalb aller Labelpolygone bedeuten: Hintergrund (Klasse 0) oder unbekannt (im Training ignoriert).</translation>
    </message>
    <message>
      <source>Extent</source>
      <translation>Ausdehnung</translation>
    </message>
    <message>
      <source>Area to cut chips from. Empty: the whole image.</source>
      <translation>Bereich, aus dem Chips geschnitten werden. Leer: das ganze Bild.</translation>
    </message>
    <message>
      <source>Chip size (pixels)</source>
      <translation>Chipgröße (Pixel)</translation>
    </message>
    <message>
      <source>Width and height of the chips in pixels, a multiple of 32.</source>
      <translation>Breite und Höhe der Chips in Pixeln, ein Vielfaches von 32.</translation>
    </message>
    <message>
      <source>Stride (pixels)</source>
      <translation>Schrittweite (Pixel)</translation>
    </message>
    <message>
      <source>Pixels between chip origins. 0: the chip size (no overlap); smaller values make overlapping chips.</source>
      <translation>Pixel zwischen den Chip-Ursprüngen. 0: die Chipgröße (keine Überlappung); kleinere Werte ergeben überlappende Chips.</translation>
    </message>
    <message>
      <source>Minimum labelled share (%)</source>
      <translation>Minimaler gelabelter Anteil (%)</translation>
    </message>
    <message>
      <source>Skip chips with a smaller share of pixels of a non-background class.</source>
      <translation>Chips mit einem kleineren Anteil an Pixeln einer Nicht-Hintergrundklasse überspringen.</translation>
    </message>
    <message>
      <source>Maximum nodata share (%)</source>
      <translation>Maximaler NoData-Anteil (%)</translation>
    </message>
    <message>
      <source>Skip chips with a larger share of image nodata.</source>
      <translation>Chips mit einem größeren Anteil an NoData im Bild überspringen.</translation>
    </message>
    <message>
      <source>Add to an earlier export</source>
      <translation>Zu einem früheren Export hinzufügen</translation>
    </message>
    <message>
      <source>Add the chips to the chip folder of an earlier export (same bands, data type and chip size): its classes and normalisation are kept, class names are matched to its classes. Off: the folder must be new, empty, or an earlier export of the same raster, which is replaced.</source>
      <translation>Die Chips dem Chipordner eines früheren Exports hinzufügen (gleiche Bänder, gleicher Datentyp, gleiche Chipgröße): seine Klassen und Normalisierung bleiben, Klassennamen werden seinen Klassen zugeordnet. Aus: der Ordner muss neu, leer oder ein früherer Export desselben Rasters sein, der ersetzt wird.</translation>
    </message>
    <message>
      <source>Output chip folder</source>
      <translation>Ausgabeordner für Chips</translation>
    </message>
    <message>
      <source>A new or empty folder for the chip data set.</source>
      <translation>Ein neuer oder leerer Ordner für den Chip-Datensatz.</translation>
    </message>
    <message>
      <source>Chip footprints</source>
      <translation>Chip-Umrisse</translation>
    </message>
    <message>
      <source>One polygon per chip with its id and label shares.</source>
      <translation>Ein Polygon je Chip mit seiner Kennung und seinen Labelanteilen.</translation>
    </message>
    <message>
      <source>Number of chips</source>
      <translation>Anzahl der Chips</translation>
    </message>
    <message>
      <source>Chip folder</source>
      <translation>Chip-Ordner</translation>
    </message>
    <message>
      <source>A folder written by Export Training Chips, or an Esri 'Classified Tiles' folder.</source>
      <translation>Ein von „Trainingschips exportieren“ geschriebener Ordner oder ein Esri-Ordner „Classified Tiles“.</translation>
    </message>
    <message>
      <source>Backbone</source>
      <translation>Backbone</translation>
    </message>
    <message>
      <source>The ResNet encoder. Larger ones are more accurate and slower.</source>
      <translation>Der ResNet-Encoder. Größere sind genauer und langsamer.</translation>
    </message>
    <message>
      <source>Start from ImageNet weights</source>
      <translation>Mit ImageNet-Gewichten beginnen</translation>
    </message>
    <message>
      <source>Initialise the encoder with ImageNet weights. They are downloaded the first time (internet needed once) and kept in PyTorch's cache; offline, give a weights file as ENCODER_WEIGHTS or turn this off.</source>
      <translation>Den Encoder mit ImageNet-Gewichten initialisieren. Sie werden beim ersten Mal heruntergeladen (einmal Internet nötig) und im Cache von PyTorch aufbewahrt; offline eine Gewichtsdatei als ENCODER_WEIGHTS angeben oder dies ausschalten.</translation>
    </message>
    <message>
      <source>Local encoder weights</source>
      <translation>Lokale Encoder-Gewichte</translation>
    </message>
    <message>
      <source>A torchvision ResNet weights file (.pth), for machines without internet.</source>
      <translation>Eine torchvision-ResNet-Gewichtsdatei (.pth), für Rechner ohne Internet.</translation>
    </message>
    <message>
      <source>Continue from model</source>
      <translation>Von Modell fortsetzen</translation>
    </message>
    <message>
      <source>A trained model to fine-tune; its bands and classes must match the chips.</source>
      <translation>Ein trainiertes Modell zum Weitertrainieren; seine Bänder und Klassen müssen zu den Chips passen.</translation>
    </message>
    <message>
      <source>Epochs</source>
      <translation>Epochen</translation>
    </message>
    <message>
      <source>Passes over the training chips, at most. 0: automatic — 20, or with a time limit as many as fit in it.</source>
      <translation>Höchstzahl der Durchläufe über die Trainingschips. 0: automatisch — 20, mit Zeitlimit so viele, wie hineinpassen.</translation>
    </message>
    <message>
      <source>Time limit (minutes)</source>
      <translation>Zeitlimit (Minuten)</translation>
    </message>
    <message>
      <source>Stop after this many minutes, keeping the best model: the learning-rate schedule is planned to end at the limit, and everything (the learning-rate test, validation, saving) fits in it. 0: no limit (EPOCHS decides).</source>
      <translation>Nach so vielen Minuten aufhören und das beste Modell behalten: der Lernraten-Verlauf wird so geplant, dass er zum Limit endet, und alles (Lernratentest, Validierung, Speichern) passt hinein. 0: kein Limit (EPOCHS entscheidet).</translation>
    </message>
    <message>
      <source>Batch size</source>
      <translation>Stapelgröße</translation>
    </message>
    <message>
      <source>Chips per training step. Lower it if memory runs out.</source>
      <translation>Chips je Trainingsschritt. Verringern, wenn der Speicher nicht reicht.</translation>
    </message>
    <message>
      <source>Learning rate</source>
      <translation>Lernrate</translation>
    </message>
    <message>
      <source>0: found automatically by a learning-rate range test.</source>
      <translation>0: automatisch durch einen Lernraten-Suchlauf bestimmt.</translation>
    </message>
    <message>
      <source>Validation share (%)</source>
      <translation>Validierungsanteil (%)</translation>
    </message>
    <message>
      <source>Share of chips held out for validation, in spatial blocks apart from the training chips.</source>
      <translation>Anteil der Chips, der zur Validierung zurückgehalten wird, in räumlichen Blöcken getrennt von den Trainingschips.</translation>
    </message>
    <message>
      <source>Early stopping (epochs)</source>
      <translation>Vorzeitiges Beenden (Epochen)</translation>
    </message>
    <message>
      <source>Stop after this many epochs without a better validation mean IoU, once the learning rate has come down (the last 40 % of the schedule). Not used with a time limit, whose schedule ends at the limit. 0: never.</source>
      <translation>Nach so vielen Epochen ohne besseren mittleren Validierungs-IoU anhalten, sobald die Lernrate gesunken ist (die letzten 40 % des Verlaufs). Nicht mit Zeitlimit, dessen Verlauf am Limit endet. 0: nie.</translation>
    </message>
    <message>
      <source>Loss</source>
      <translation>Verlustfunktion</translation>
    </message>
    <message>
      <source>Cross-entropy; focal (for rare classes); or cross-entropy plus Dice.</source>
      <translation>Kreuzentropie; Focal (für seltene Klassen); oder Kreuzentropie plus Dice.</translation>
    </message>
    <message>
      <source>Balance classes</source>
      <translation>Klassen ausgleichen</translation>
    </message>
    <message>
      <source>Weight classes by inverse frequency (square root, at most 10× the median class), so rare classes count more.</source>
      <translation>Klassen nach inverser Häufigkeit gewichten (Quadratwurzel, höchstens 10× die mittlere Klasse), sodass seltene Klassen mehr zählen.</translation>
    </message>
    <message>
      <source>Augment (windows, flips, rotations)</source>
      <translation>Augmentieren (Ausschnitte, Spiegelungen, Drehungen)</translation>
    </message>
    <message>
      <source>Cut training windows at random shifts (up to half a chip) from the mosaic of the training chips, flip and rotate them by 90°, and vary brightness and contrast per band (gain ±12.5 %, offset ±0.25 standard deviations).</source>
      <translation>Trainingsausschnitte mit zufälliger Verschiebung (bis zu einem halben Chip) aus dem Mosaik der Trainingschips schneiden, um 90° spiegeln und drehen und Helligkeit und Kontrast je Kanal variieren (Verstärkung ±12,5 %, Versatz ±0,25 Standardabweichungen).</translation>
    </message>
    <message>
      <source>Freeze encoder</source>
      <translation>Encoder einfrieren</translation>
    </message>
    <message>
      <source>Train the decoder only (faster, for small data sets).</source>
      <translation>Nur den Decoder trainieren (schneller, für kleine Datensätze).</translation>
    </message>
    <message>
      <source>Device</source>
      <translation>Gerät</translation>
    </message>
    <message>
      <source>auto: a CUDA GPU when present, else the CPU.</source>
      <translation>auto: eine CUDA-GPU, falls vorhanden, sonst die CPU.</translation>
    </message>
    <message>
      <source>Precision</source>
      <translation>Genauigkeit</translation>
    </message>
    <message>
      <source>auto: the fastest arithmetic this CPU or GPU does natively (bf16 on CPUs with native bf16, measured; float16 mixed precision on CUDA). full: float32 throughout.</source>
      <translation>auto: die schnellste Arithmetik, die diese CPU oder GPU nativ beherrscht (bf16 auf CPUs mit nativem bf16, gemessen; float16-Mixed-Precision mit CUDA). full: durchgehend float32.</translation>
    </message>
    <message>
      <source>Random seed</source>
      <translation>Zufalls-Seed</translation>
    </message>
    <message>
      <source>Makes the split and the training reproducible.</source>
      <translation>Macht die Aufteilung und das Training reproduzierbar.</translation>
    </message>
    <message>
      <source>Output model</source>
      <translation>Ausgabemodell</translation>
    </message>
    <message>
      <source>The trained model file (.pt).</source>
      <translation>Die trainierte Modelldatei (.pt).</translation>
    </message>
    <message>
      <source>Training report</source>
      <translation>Trainingsbericht</translation>
    </message>
    <message>
      <source>A self-contained HTML page with curves, scores and example predictions.</source>
      <translation>Eine eigenständige HTML-Seite mit Kurven, Werten und Beispielvorhersagen.</translation>
    </message>
    <message>
      <source>Model as ONNX</source>
      <translation>Modell als ONNX</translation>
    </message>
    <message>
      <source>The best model also as ONNX, with the metadata the Deepness plugin reads (needs the onnx package).</source>
      <translation>Das beste Modell zusätzlich als ONNX, mit den Metadaten, die das Deepness-Plugin liest (benötigt das Paket onnx).</translation>
    </message>
    <message>
      <source>Validation mean IoU</source>
      <translation>Mittlerer Validierungs-IoU</translation>
    </message>
    <message>
      <source>Validation pixel accuracy</source>
      <translation>Pixelgenauigkeit der Validierung</translation>
    </message>
    <message>
      <source>Epochs run</source>
      <translation>Gelaufene Epochen</translation>
    </message>
    <message>
      <source>Imagery with the bands the model was trained on, in the same order.</source>
      <translation>Bilddaten mit den Bändern, mit denen das Modell trainiert wurde, in derselben Reihenfolge.</translation>
    </message>
    <message>
      <source>The raster's bands to feed the model, in the model's order. Empty: the bands the model was trained on (by number), checked against the model's band names.</source>
      <translation>Die Bänder des Rasters, die das Modell erhält, in der Reihenfolge des Modells. Leer: die Bänder, mit denen das Modell trainiert wurde (nach Nummer), geprüft an den Bandnamen des Modells.</translation>
    </message>
    <message>
      <source>Model</source>
      <translation>Modell</translation>
    </message>
    <message>
      <source>A model file (.pt) from Train U-Net.</source>
      <translation>Eine Modelldatei (.pt) aus „U-Net trainieren“.</translation>
    </message>
    <message>
      <source>Area to classify. Empty: the whole raster.</source>
      <translation>Zu klassifizierender Bereich. Leer: das ganze Raster.</translation>
    </message>
    <message>
      <source>Tile size (pixels)</source>
      <translation>Kachelgröße (Pixel)</translation>
    </message>
    <message>
      <source>Tile width and height, a multiple of 32. 0: the model's chip size.</source>
      <translation>Breite und Höhe der Kacheln, ein Vielfaches von 32. 0: die Chipgröße des Modells.</translation>
    </message>
    <message>
      <source>Tile overlap (%)</source>
      <translation>Kachelüberlappung (%)</translation>
    </message>
    <message>
      <source>Overlap between neighbouring tiles; overlaps are blended to avoid seams.</source>
      <translation>Überlappung benachbarter Kacheln; Überlappungen werden überblendet, um Nähte zu vermeiden.</translation>
    </message>
    <message>
      <source>Tiles per forward pass.</source>
      <translation>Kacheln je Vorwärtsdurchlauf.</translation>
    </message>
    <message>
      <source>Test-time augmentation</source>
      <translation>Testzeit-Augmentierung</translation>
    </message>
    <message>
      <source>Average the predictions of the 8 flips and rotations (8× slower, a little more accurate).</source>
      <translation>Mittelt die Vorhersagen der 8 Spiegelungen und Drehungen (8× langsamer, etwas genauer).</translation>
    </message>
    <message>
      <source>auto: int8 or bf16 where this machine runs them faster and the map agrees with float32 on at least 99 % of pixels (checked on tiles of the raster), float16 on CUDA. full: float32 throughout.</source>
      <translation>auto: int8 oder bf16, wo dieser Rechner sie schneller ausführt und die Karte auf mindestens 99 % der Pixel mit float32 übereinstimmt (an Kacheln des Rasters geprüft), float16 mit CUDA. full: durchgehend float32.</translation>
    </message>
    <message>
      <source>Minimum mapping unit (pixels)</source>
      <translation>Mindestkartiereinheit (Pixel)</translation>
    </message>
    <message>
      <source>Regions of one class smaller than this many pixels are merged into the largest neighbouring region, in the class raster and the polygons. 0: off.</source>
      <translation>Gebiete einer Klasse mit weniger Pixeln als diesem Wert werden dem größten Nachbargebiet zugeschlagen, im Klassenraster und in den Polygonen. 0: aus.</translation>
    </message>
    <message>
      <source>Classified raster</source>
      <translation>Klassifiziertes Raster</translation>
    </message>
    <message>
      <source>The class raster.</source>
      <translation>Das Klassenraster.</translation>
    </message>
    <message>
      <source>Confidence raster</source>
      <translation>Konfidenzraster</translation>
    </message>
    <message>
      <source>Probability (0–1) of the chosen class per pixel.</source>
      <translation>Wahrscheinlichkeit (0–1) der gewählten Klasse je Pixel.</translation>
    </message>
    <message>
      <source>Class probabilities</source>
      <translation>Klassenwahrscheinlichkeiten</translation>
    </message>
    <message>
      <source>One band per class, named after it: its probability, stored as bytes with scale 1/255 (readers see 0–1); nodata where the input is nodata.</source>
      <translation>Ein Band je Klasse, nach ihr benannt: ihre Wahrscheinlichkeit, als Byte mit Skalierung 1/255 gespeichert (Leser sehen 0–1); NoData, wo die Eingabe NoData ist.</translation>
    </message>
    <message>
      <source>The class map as polygons, one per connected region (after the minimum mapping unit), with class value, class name and area in square metres; styled by class colour.</source>
      <translation>Die Klassenkarte als Polygone, eines je zusammenhängendem Gebiet (nach der Mindestkartiereinheit), mit Klassenwert, Klassenname und Fläche in Quadratmetern; nach Klassenfarbe gestaltet.</translation>
    </message>
    <message>
      <source>Class raster</source>
      <translation>Klassenraster</translation>
    </message>
    <message>
      <source>The class map to assess, e.g. the output of Classify Raster.</source>
      <translation>Die zu bewertende Klassenkarte, z. B. das Ergebnis von „Raster klassifizieren“.</translation>
    </message>
    <message>
      <source>Reference polygons or sample points</source>
      <translation>Referenzpolygone oder Stichprobenpunkte</translation>
    </message>
    <message>
      <source>Polygons of known classes, or labelled sample points (Create Accuracy Sample) for area estimates with confidence intervals; in any CRS. Give these or a reference raster.</source>
      <translation>Polygone bekannter Klassen oder beschriftete Stichprobenpunkte (Genauigkeitsstichprobe erstellen) für Flächenschätzungen mit Konfidenzintervallen; in beliebigem KBS. Diese oder ein Referenzraster angeben.</translation>
    </message>
    <message>
      <source>Field with the class names or codes of the map (for sample points: the field the analyst filled in, e.g. reference). Empty: every polygon is class 1.</source>
      <translation>Feld mit den Klassennamen oder -codes der Karte (bei Stichprobenpunkten: das vom Bearbeiter ausgefüllte Feld, z. B. reference). Leer: jedes Polygon ist Klasse 1.</translation>
    </message>
    <message>
      <source>Reference raster</source>
      <translation>Referenzraster</translation>
    </message>
    <message>
      <source>A classified reference raster instead of polygons, on any grid (resampled by nearest neighbour).</source>
      <translation>Ein klassifiziertes Referenzraster statt Polygonen, auf beliebigem Raster (Nächster-Nachbar-Resampling).</translation>
    </message>
    <message>
      <source>Outside the reference polygons</source>
      <translation>Außerhalb der Referenzpolygone</translation>
    </message>
    <message>
      <source>What the reference means outside every polygon: background (class 0) or unknown (not counted).</source>
      <translation>Was die Referenz außerhalb aller Polygone bedeutet: Hintergrund (Klasse 0) oder unbekannt (nicht gezählt).</translation>
    </message>
    <message>
      <source>Area to assess. Empty: the whole class raster.</source>
      <translation>Zu bewertender Bereich. Leer: das ganze Klassenraster.</translation>
    </message>
    <message>
      <source>Accuracy table</source>
      <translation>Genauigkeitstabelle</translation>
    </message>
    <message>
      <source>Per class: reference and mapped pixels, producer's and user's accuracy, F1 and IoU.</source>
      <translation>Je Klasse: Referenz- und kartierte Pixel, Hersteller- und Nutzergenauigkeit, F1 und IoU.</translation>
    </message>
    <message>
      <source>Accuracy report</source>
      <translation>Genauigkeitsbericht</translation>
    </message>
    <message>
      <source>A self-contained HTML page with the confusion matrix, overall accuracy and kappa.</source>
      <translation>Eine eigenständige HTML-Seite mit Konfusionsmatrix, Gesamtgenauigkeit und Kappa.</translation>
    </message>
    <message>
      <source>Area estimates</source>
      <translation>Flächenschätzungen</translation>
    </message>
    <message>
      <source>With sample points as the reference: per class the mapped area, the error-adjusted area and its 95 % confidence interval (hectares), user's and producer's accuracy with their intervals.</source>
      <translation>Mit Stichprobenpunkten als Referenz: je Klasse die kartierte Fläche, die fehlerbereinigte Fläche und ihr 95-%-Konfidenzintervall (Hektar), Nutzer- und Herstellergenauigkeit mit ihren Intervallen.</translation>
    </message>
    <message>
      <source>Overall accuracy</source>
      <translation>Gesamtgenauigkeit</translation>
    </message>
    <message>
      <source>Overall accuracy: 95 % interval (±)</source>
      <translation>Gesamtgenauigkeit: 95-%-Intervall (±)</translation>
    </message>
    <message>
      <source>Kappa</source>
      <translation>Kappa</translation>
    </message>
    <message>
      <source>Mean IoU</source>
      <translation>Mittlere IoU</translation>
    </message>
    <message>
      <source>The class map to sample, e.g. the output of Classify Raster.</source>
      <translation>Die zu beprobende Klassenkarte, z. B. die Ausgabe von Raster klassifizieren.</translation>
    </message>
    <message>
      <source>Sample size (points)</source>
      <translation>Stichprobenumfang (Punkte)</translation>
    </message>
    <message>
      <source>Total number of points. 0: computed from the target standard error and the expected user's accuracy (Olofsson et al. 2014, equation 13).</source>
      <translation>Gesamtzahl der Punkte. 0: berechnet aus dem angestrebten Standardfehler und der erwarteten Nutzergenauigkeit (Olofsson et al. 2014, Gleichung 13).</translation>
    </message>
    <message>
      <source>Target standard error of overall accuracy</source>
      <translation>Angestrebter Standardfehler der Gesamtgenauigkeit</translation>
    </message>
    <message>
      <source>For the computed sample size: 0.01 gives overall accuracy within about ±2 % (95 % confidence).</source>
      <translation>Für den berechneten Stichprobenumfang: 0,01 ergibt die Gesamtgenauigkeit auf etwa ±2 % (95 % Konfidenz).</translation>
    </message>
    <message>
      <source>Expected user's accuracy</source>
      <translation>Erwartete Nutzergenauigkeit</translation>
    </message>
    <message>
      <source>For the computed sample size: the user's accuracy you expect of the map's classes (0–1).</source>
      <translation>Für den berechneten Stichprobenumfang: die erwartete Nutzergenauigkeit der Kartenklassen (0–1).</translation>
    </message>
    <message>
      <source>Allocation</source>
      <translation>Aufteilung</translation>
    </message>
    <message>
      <source>How the points are shared among the classes: proportional to area, equal, or minimum-per-class (every class at least MIN_PER_CLASS points, the rest proportional; the paper's advice for rare classes).</source>
      <translation>Wie die Punkte auf die Klassen verteilt werden: flächenproportional, gleich oder minimum-per-class (jede Klasse mindestens MIN_PER_CLASS Punkte, der Rest proportional; die Empfehlung des Artikels für seltene Klassen).</translation>
    </message>
    <message>
      <source>Minimum points per class</source>
      <translation>Mindestpunkte je Klasse</translation>
    </message>
    <message>
      <source>For ALLOCATION=minimum-per-class.</source>
      <translation>Für ALLOCATION=minimum-per-class.</translation>
    </message>
    <message>
      <source>Area to sample. Empty: the whole class raster.</source>
      <translation>Zu beprobende Fläche. Leer: das ganze Klassenraster.</translation>
    </message>
    <message>
      <source>The same seed gives the same points.</source>
      <translation>Derselbe Startwert ergibt dieselben Punkte.</translation>
    </message>
    <message>
      <source>Sample points</source>
      <translation>Stichprobenpunkte</translation>
    </message>
    <message>
      <source>Points with map_value, map_class, an empty reference field to fill in, and their stratum's pixels and area.</source>
      <translation>Punkte mit map_value, map_class, einem leeren, auszufüllenden Feld reference sowie Pixelzahl und Fläche ihrer Schicht.</translation>
    </message>
    <message>
      <source>Number of points</source>
      <translation>Anzahl der Punkte</translation>
    </message>
    <message>
      <source>Imagery with the bands the model was trained on.</source>
      <translation>Bilddaten mit den Bändern, mit denen das Modell trainiert wurde.</translation>
    </message>
    <message>
      <source>Windows</source>
      <translation>Fenster</translation>
    </message>
    <message>
      <source>How many windows to propose.</source>
      <translation>Wie viele Fenster vorgeschlagen werden.</translation>
    </message>
    <message>
      <source>Window size (pixels)</source>
      <translation>Fenstergröße (Pixel)</translation>
    </message>
    <message>
      <source>Side of each square window. 0: the model's chip size.</source>
      <translation>Seitenlänge jedes quadratischen Fensters. 0: die Chipgröße des Modells.</translation>
    </message>
    <message>
      <source>Areas already labelled</source>
      <translation>Bereits beschriftete Flächen</translation>
    </message>
    <message>
      <source>Polygons of the areas labelled so far (e.g. the MASK of the last export): never proposed again.</source>
      <translation>Polygone der bisher beschrifteten Flächen (z. B. die MASK des letzten Exports): werden nie wieder vorgeschlagen.</translation>
    </message>
    <message>
      <source>Strategy</source>
      <translation>Strategie</translation>
    </message>
    <message>
      <source>uncertainty: the most uncertain windows; diverse: uncertain windows spread over the map and the predicted classes.</source>
      <translation>uncertainty: die unsichersten Fenster; diverse: unsichere Fenster, verteilt über die Karte und die vorhergesagten Klassen.</translation>
    </message>
    <message>
      <source>Area to search. Empty: the whole raster.</source>
      <translation>Zu durchsuchende Fläche. Leer: das ganze Raster.</translation>
    </message>
    <message>
      <source>As on Classify Raster: auto uses faster arithmetic where it draws the same map; full is float32.</source>
      <translation>Wie bei Raster klassifizieren: auto nutzt schnellere Arithmetik, wo sie dieselbe Karte zeichnet; full ist float32.</translation>
    </message>
    <message>
      <source>Breaks ties between equal scores; the same seed gives the same windows.</source>
      <translation>Entscheidet bei gleichen Werten; derselbe Startwert ergibt dieselben Fenster.</translation>
    </message>
    <message>
      <source>Windows to label</source>
      <translation>Zu beschriftende Fenster</translation>
    </message>
    <message>
      <source>Square polygons on the raster's pixel grid with rank, score, uncertainty, the predicted class shares and an empty class field to fill in.</source>
      <translation>Quadratische Polygone im Pixelraster mit Rang, Wert, Unsicherheit, den vorhergesagten Klassenanteilen und einem leeren, auszufüllenden Klassenfeld.</translation>
    </message>
    <message>
      <source>Number of windows</source>
      <translation>Anzahl der Fenster</translation>
    </message>
    <message>
      <source>U-Net model (*.pt)</source>
      <translation>U-Net-Modell (*.pt)</translation>
    </message>
    <message>
      <source>HTML files (*.html)</source>
      <translation>HTML-Dateien (*.html)</translation>
    </message>
    <message>
      <source>ONNX models (*.onnx)</source>
      <translation>ONNX-Modelle (*.onnx)</translation>
    </message>
    <message>
      <source>choose a raster layer.</source>
      <translation>Wählen Sie einen Rasterlayer.</translation>
    </message>
    <message>
      <source>the raster has no coordinate reference system; assign one first.</source>
      <translation>Das Raster hat kein Koordinatenbezugssystem; weisen Sie zuerst eines zu.</translation>
    </message>
    <message>
      <source>Canceled; partial outputs were removed.</source>
      <translation>Abgebrochen; unvollständige Ergebnisse wurden entfernt.</translation>
    </message>
    <message>
      <source>the field does not exist in the class polygons.</source>
      <translation>Das Feld gibt es in den Klassenpolygonen nicht.</translation>
    </message>
    <message>
      <source>the field does not exist in the reference polygons.</source>
      <translation>das Feld gibt es in den Referenzpolygonen nicht.</translation>
    </message>
    <message>
      <source>This algorithm needs PyTorch: </source>
      <translation>Dieser Algorithmus benötigt PyTorch: </translation>
    </message>
    <message>
      <source>U-Net segmentation</source>
      <translation>U-Net-Segmentierung</translation>
    </message>
    <message>
      <source>Workflows</source>
      <translation>Arbeitsabläufe</translation>
    </message>
    <message>
      <source>give exactly one label source: class polygons (LABELS) or a classified raster (LABEL_RASTER).</source>
      <translation>Geben Sie genau eine Labelquelle an: Klassenpolygone (LABELS) oder ein klassifiziertes Raster (LABEL_RASTER).</translation>
    </message>
    <message>
      <source>Training was canceled; the best model so far was saved.</source>
      <translation>Das Training wurde abgebrochen; das bisher beste Modell wurde gespeichert.</translation>
    </message>
    <message>
      <source>give exactly one reference: polygons or sample points (REFERENCE), or a classified raster (REFERENCE_RASTER).</source>
      <translation>genau eine Referenz angeben: Polygone oder Stichprobenpunkte (REFERENCE) oder ein klassifiziertes Raster (REFERENCE_RASTER).</translation>
    </message>
    <message>
      <source>area estimates need a sample of labelled points as REFERENCE (Create Accuracy Sample); a complete reference is assessed by counting pixels. Leave OUTPUT_AREAS empty.</source>
      <translation>Flächenschätzungen brauchen eine Stichprobe beschrifteter Punkte als REFERENCE (Genauigkeitsstichprobe erstellen); eine vollständige Referenz wird durch Pixelzählung bewertet. OUTPUT_AREAS leer lassen.</translation>
    </message>
    <message>
      <source>sample points need the field that holds their reference labels (e.g. reference, as Create Accuracy Sample writes it).</source>
      <translation>Stichprobenpunkte brauchen das Feld mit ihren Referenzklassen (z. B. reference, wie Genauigkeitsstichprobe erstellen es schreibt).</translation>
    </message>
    <message>
      <source>a sample feature holds several points; give one point per feature.</source>
      <translation>ein Stichprobenobjekt enthält mehrere Punkte; einen Punkt je Objekt angeben.</translation>
    </message>
    <message>
      <source>the layer has no polygons.</source>
      <translation>Der Layer enthält keine Polygone.</translation>
    </message>
    <message>
      <source>{} polygons without a class value were skipped.</source>
      <translation>{} Polygone ohne Klassenwert wurden übersprungen.</translation>
    </message>
  </context>
</TS>
